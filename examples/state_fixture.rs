//! Writes the sample state as a state file: `state_fixture OUT`. Built for
//! big-endian MIPS and run under qemu-mips it produced
//! `src/store/fixtures/state-v2-mips.bin` (see `tests/packaging/state_fixture.rs`).

#[path = "../tests/fixtures/sample_state.rs"]
mod sample_state;

use netmeter::store::{FileKind, encode};

fn main() {
    let Some(out) = std::env::args().nth(1) else {
        eprintln!("usage: state_fixture OUT");
        std::process::exit(2);
    };
    let state = sample_state::sample_state();
    let bytes = encode(
        FileKind::Snapshot,
        sample_state::SEQUENCE,
        sample_state::SAVED_UNIX,
        &state,
    )
    .expect("encode");
    std::fs::write(&out, &bytes).expect("write");
    println!(
        "{out}: {} bytes, written on {} ({}-endian)",
        bytes.len(),
        std::env::consts::ARCH,
        if cfg!(target_endian = "big") {
            "big"
        } else {
            "little"
        }
    );
}
