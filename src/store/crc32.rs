//! CRC-32 (IEEE 802.3, the zlib/PNG/gzip one) with one 1 KiB table.
//!
//! Hand-written rather than `crc32fast`: that crate's 16 KiB of slicing
//! tables cost about 15 KB of a router's flash, and state files are small
//! and written rarely, so byte-at-a-time speed is plenty.

const POLYNOMIAL: u32 = 0xEDB8_8320; // reflected 0x04C11DB7

const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLYNOMIAL
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

pub fn hash(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |crc, &b| {
        TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::hash;

    #[test]
    fn matches_the_standard_check_values() {
        // The catalogue's check value for CRC-32/ISO-HDLC, and zlib's crc32().
        assert_eq!(hash(b"123456789"), 0xCBF4_3926);
        assert_eq!(hash(b""), 0);
        assert_eq!(
            hash(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }
}
