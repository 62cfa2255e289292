//! A state file written by netmeter's own code on big-endian MIPS loads on
//! this machine, and is byte for byte what this machine writes for the
//! same state: the format has no endianness or word size in it.
//!
//! `src/store/fixtures/state-v2-mips.bin` (format 2, with upstream totals;
//! `state-v1-mips.bin` is the same for format 1, kept to prove old files
//! load) was made by
//! `examples/state_fixture.rs` built for `mips-unknown-linux-musl` and run
//! under qemu-user:
//!
//! ```sh
//! python3 -m venv /tmp/zig && /tmp/zig/bin/pip install ziglang cargo-zigbuild
//! PATH=/tmp/zig/bin:$PATH RUSTFLAGS="-C relocation-model=static" \
//!   cargo +nightly zigbuild --release --example state_fixture \
//!   --target mips-unknown-linux-musl -Zbuild-std=std,panic_abort
//! qemu-mips target/mips-unknown-linux-musl/release/examples/state_fixture \
//!   src/store/fixtures/state-v2-mips.bin
//! ```
//!
//! (A static-pie build crashes at start under qemu-mips, hence the static
//! relocation model.) Should the sample state change, regenerate it so;
//! should the format change, keep this file and add a reader, as for
//! `state-v1.bin`.

#[path = "../fixtures/sample_state.rs"]
mod sample_state;

use netmeter::store::state::State;
use netmeter::store::{FileKind, decode, encode};

const FROM_MIPS: &[u8] = include_bytes!("../../src/store/fixtures/state-v1-mips.bin");
const FROM_MIPS_V2: &[u8] = include_bytes!("../../src/store/fixtures/state-v2-mips.bin");

/// A version 2 file as today's writer saves the same state: version 3,
/// the empty quota ledger (one byte) and its length (four) after the
/// payload, and the length and checksum to match.
fn as_version_3(v2: &[u8]) -> Vec<u8> {
    let mut b = v2[..v2.len() - 4].to_vec();
    b[4..6].copy_from_slice(&3u16.to_le_bytes());
    b.extend_from_slice(&[0, 1, 0, 0, 0]);
    let len = (b.len() - 28) as u32;
    b[24..28].copy_from_slice(&len.to_le_bytes());
    let crc = crc32(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

#[test]
fn a_version_2_state_loads_and_saves_to_the_same_bytes_in_either_build() {
    // The core build keeps the upstream totals it cannot read as they
    // are, so going back to netmeter-full loses none of them; the quotas'
    // ledger (format 3) follows them, empty for a version 2 file.
    let decoded = decode::<State>(FROM_MIPS_V2, FileKind::Snapshot)
        .unwrap_or_else(|e| panic!("the MIPS file does not load: {e}"));
    assert!(decoded.payload.quotas.records.is_empty());
    let again = encode(
        FileKind::Snapshot,
        decoded.sequence,
        decoded.saved_unix,
        &decoded.payload,
    )
    .unwrap();
    assert!(
        again == as_version_3(FROM_MIPS_V2),
        "a loaded state re-encodes differently"
    );
}

#[cfg(feature = "upstream")]
#[test]
fn a_version_2_state_written_on_big_endian_mips_is_the_same_bytes_here() {
    let decoded = decode::<State>(FROM_MIPS_V2, FileKind::Snapshot)
        .unwrap_or_else(|e| panic!("the MIPS file does not load: {e}"));
    assert_eq!(decoded.version, 2);
    let here = encode(
        FileKind::Snapshot,
        sample_state::SEQUENCE,
        sample_state::SAVED_UNIX,
        &sample_state::sample_state(),
    )
    .unwrap();
    let from_mips_today = as_version_3(FROM_MIPS_V2);
    assert!(
        here == from_mips_today,
        "x86_64 writes {} bytes for the sample state, MIPS wrote {}: first difference at byte {:?}",
        here.len(),
        from_mips_today.len(),
        here.iter().zip(&from_mips_today).position(|(a, b)| a != b)
    );
    let upstream = netmeter::upstream::UpstreamAccounts::decode(&decoded.payload.upstream)
        .expect("the upstream totals decode");
    assert_eq!(
        upstream.encode(),
        decoded.payload.upstream.bytes(),
        "the upstream slice writes back the bytes it read"
    );
    let isp = upstream.get("isp").expect("the upstream source");
    let wan = isp.wan.as_ref().unwrap();
    assert_eq!(wan.rx_bytes(), 3_000_000_007, "the second reading's growth");
    assert_eq!(isp.devices[0].hostname.as_deref(), Some("tv"));
    assert!(isp.bypass.as_ref().unwrap().rx_bytes > 0);
}

#[test]
fn a_state_file_written_on_big_endian_mips_loads_here_and_is_the_same_bytes() {
    let decoded = decode::<State>(FROM_MIPS, FileKind::Snapshot)
        .unwrap_or_else(|e| panic!("the MIPS file does not load: {e}"));
    // Written before format 2 added the upstream totals: read with none.
    assert_eq!(decoded.version, 1);
    assert!(decoded.payload.upstream.is_empty());
    assert_eq!(decoded.sequence, sample_state::SEQUENCE);
    assert_eq!(decoded.saved_unix, sample_state::SAVED_UNIX);
    let here = encode(
        FileKind::Snapshot,
        sample_state::SEQUENCE,
        sample_state::SAVED_UNIX,
        &sample_state::sample_state_v1(),
    )
    .unwrap();
    // Today's writer makes the same bytes but for the version, the empty
    // upstream list (one byte), the empty quota ledger and its length
    // (five), and the length and checksum that follow.
    let from_mips_today = {
        let mut b = FROM_MIPS[..FROM_MIPS.len() - 4].to_vec();
        b[4..6].copy_from_slice(&3u16.to_le_bytes());
        b.push(0);
        b.extend_from_slice(&[0, 1, 0, 0, 0]);
        let len = (b.len() - 28) as u32;
        b[24..28].copy_from_slice(&len.to_le_bytes());
        let crc = crc32(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    };
    assert!(
        here == from_mips_today,
        "x86_64 writes {} bytes for the sample state, MIPS wrote {}: first difference at byte {:?}",
        here.len(),
        FROM_MIPS.len(),
        here.iter().zip(&from_mips_today).position(|(a, b)| a != b)
    );
    // What was loaded saves to the same bytes again.
    let again = encode(
        FileKind::Snapshot,
        decoded.sequence,
        decoded.saved_unix,
        &decoded.payload,
    )
    .unwrap();
    assert!(
        again == from_mips_today,
        "a loaded state re-encodes differently"
    );
    // And it carries the data: the interfaces and devices it was built with.
    let state = decoded.payload;
    assert_eq!(
        state
            .interfaces
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["br-lan", "wan"]
    );
    assert_eq!(
        state.devices.devices().count(),
        2,
        "max_devices 2, the third is other"
    );
    assert!(state.devices.other().tx_bytes > 0);
    assert!(
        state.timeline.interfaces["wan"].held.rx > 0,
        "held growth kept"
    );
}

/// CRC-32 (IEEE), bit by bit: the test's own, to build the expected file.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
