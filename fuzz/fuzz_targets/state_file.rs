//! A state file read back from flash or the spool may hold any bytes (a
//! power cut, worn flash, a stray file): decoding must refuse it with an
//! error, never panic or allocate without bound. The checksum stops almost
//! every mutation at the header, so half the inputs are framed as valid
//! version 1 files first, to reach the payload decoder.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::store::format::decode_first;
use netmeter::store::state::{Commit, State};
use netmeter::store::{FileKind, decode, encode};

/// `payload` behind a correct version 1 header and checksum.
fn framed(kind: FileKind, payload: &[u8]) -> Vec<u8> {
    let mut file = b"NMST".to_vec();
    file.extend_from_slice(&1u16.to_le_bytes());
    file.extend_from_slice(&(kind as u16).to_le_bytes());
    file.extend_from_slice(&[0; 16]);
    file.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    file.extend_from_slice(payload);
    let crc = netmeter::store::crc32::hash(&file);
    file.extend_from_slice(&crc.to_le_bytes());
    file
}

fn check(data: &[u8], kind: FileKind) {
    if let Ok(d) = decode::<State>(data, kind) {
        // Whatever was accepted can be saved again and read back.
        let again = encode(kind, d.sequence, d.saved_unix, &d.payload).unwrap();
        decode::<State>(&again, kind).unwrap();
    }
    // A journal: records end to end, read until the first bad one.
    let mut rest = data;
    while let Ok((d, used)) = decode_first::<Commit>(rest, kind) {
        let again = encode(kind, d.sequence, d.saved_unix, &d.payload).unwrap();
        decode::<Commit>(&again, kind).unwrap();
        if used == 0 {
            break;
        }
        rest = &rest[used..];
    }
}

fuzz_target!(|data: &[u8]| {
    for kind in [FileKind::Snapshot, FileKind::Journal] {
        match data.split_first() {
            Some((&selector, payload)) if selector & 1 == 1 => check(&framed(kind, payload), kind),
            _ => check(data, kind),
        }
    }
});
