//! One pass over a CSV line, 16 bytes at a time: where it ends, where its
//! delimiters are, and whether it needs the full parser or the rules'
//! per-field checks.

/// What [`scan_line`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Line {
    /// Bytes of the line, without its `\n` or a `\r` before that.
    pub len: usize,
    /// Bytes up to and including the `\n`.
    pub consumed: usize,
    /// A quote, or a `\r` other than the one before the `\n`: only csv_core
    /// reads such a line right.
    pub needs_parser: bool,
    /// Every byte is ASCII.
    pub ascii: bool,
    /// No byte is an ASCII control character.
    pub no_control: bool,
}

/// Scans the line at the start of `buf` and leaves in `ends` where each of
/// its fields ends. `None` when `buf` holds no `\n`.
pub(super) fn scan_line(buf: &[u8], delimiter: u8, ends: &mut Vec<usize>) -> Option<Line> {
    ends.clear();
    let (mut quote, mut high, mut control) = (false, false, false);
    let (mut crs, mut last_cr) = (0, 0);
    let mut base = 0;
    while base < buf.len() {
        let rest = &buf[base..];
        let (m, valid) = match rest.first_chunk::<16>() {
            Some(block) => (masks(block, delimiter), u16::MAX),
            None => {
                let mut block = [0; 16];
                block[..rest.len()].copy_from_slice(rest);
                (masks(&block, delimiter), (1 << rest.len()) - 1)
            }
        };
        let newline = m.newline & valid;
        // This line's bytes in the block: those before the newline.
        let keep = match newline {
            0 => valid,
            n => (1 << n.trailing_zeros()) - 1,
        };
        let mut d = m.delimiter & keep;
        while d != 0 {
            ends.push(base + d.trailing_zeros() as usize);
            d &= d - 1;
        }
        quote |= m.quote & keep != 0;
        high |= m.high & keep != 0;
        control |= m.control & keep != 0;
        let cr = m.cr & keep;
        if cr != 0 {
            crs += cr.count_ones();
            last_cr = base + 15 - cr.leading_zeros() as usize;
        }
        if newline != 0 {
            let at = base + newline.trailing_zeros() as usize;
            let crlf = crs == 1 && last_cr + 1 == at;
            let len = if crlf { at - 1 } else { at };
            ends.push(len);
            return Some(Line {
                len,
                consumed: at + 1,
                needs_parser: quote || (crs > 0 && !crlf),
                ascii: !high,
                no_control: !control,
            });
        }
        base += 16;
    }
    None
}

/// One bit per byte of a 16-byte block, for each kind of byte that matters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Masks {
    newline: u16,
    delimiter: u16,
    quote: u16,
    cr: u16,
    /// Bytes 0x80 and above: not ASCII.
    high: u16,
    /// ASCII control characters other than `\r`, which has its own mask.
    control: u16,
}

#[cfg(target_arch = "x86_64")]
fn masks(block: &[u8; 16], delimiter: u8) -> Masks {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of every x86_64 CPU, and the load reads exactly
    // the 16 bytes of `block`.
    unsafe {
        let v = _mm_loadu_si128(block.as_ptr().cast());
        let eq = |b: u8| _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8))) as u16;
        // Unsigned b <= 0x1f, as min(b, 0x1f) == b.
        let low = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v)) as u16;
        let cr = eq(b'\r');
        Masks {
            newline: eq(b'\n'),
            delimiter: eq(delimiter),
            quote: eq(b'"'),
            cr,
            high: _mm_movemask_epi8(v) as u16,
            control: (low & !cr) | eq(0x7f),
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn masks(block: &[u8; 16], delimiter: u8) -> Masks {
    masks_bytewise(block, delimiter)
}

/// The same masks a byte at a time: the portable version, and the
/// reference the vector one is tested against.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn masks_bytewise(block: &[u8; 16], delimiter: u8) -> Masks {
    let mut m = Masks::default();
    for (i, &b) in block.iter().enumerate() {
        let bit = 1 << i;
        let set = |mask: &mut u16, on: bool| *mask |= if on { bit } else { 0 };
        set(&mut m.newline, b == b'\n');
        set(&mut m.delimiter, b == delimiter);
        set(&mut m.quote, b == b'"');
        set(&mut m.cr, b == b'\r');
        set(&mut m.high, b >= 0x80);
        set(&mut m.control, (b < 0x20 && b != b'\r') || b == 0x7f);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scan(text: &[u8]) -> (Option<Line>, Vec<usize>) {
        let mut ends = vec![99];
        let line = scan_line(text, b',', &mut ends);
        (line, ends)
    }

    #[test]
    fn lines_of_every_kind() {
        let line = |len, consumed, needs_parser, ascii, no_control| {
            Some(Line {
                len,
                consumed,
                needs_parser,
                ascii,
                no_control,
            })
        };
        assert_eq!(
            scan(b"a,bb,\nx,y"),
            (line(5, 6, false, true, true), vec![1, 4, 5])
        );
        assert_eq!(
            scan(b"a,b\r\nx"),
            (line(3, 5, false, true, true), vec![1, 3])
        );
        assert_eq!(scan(b"a\r,b\n").0, line(4, 5, true, true, true));
        assert_eq!(scan(b"a,b\r\r\n").0, line(5, 6, true, true, true));
        assert_eq!(scan(b"\"a\",b\n").0, line(5, 6, true, true, true));
        assert_eq!(scan("é,b\n".as_bytes()).0, line(4, 5, false, false, true));
        assert_eq!(scan(b"a\tb,c\n").0, line(5, 6, false, true, false));
        assert_eq!(scan(b"a,\x7f\n").0, line(3, 4, false, true, false));
        // Only bytes before the newline count.
        assert_eq!(scan(b"a\n\"\t\xff").0, line(1, 2, false, true, true));
        assert_eq!(scan(b"a,b"), (None, vec![1]));
        assert_eq!(scan(b""), (None, vec![]));
        // Delimiters across blocks, the newline in a later one.
        let long = [&b"abcdefghijklmno,"[..], b"pqrstuvwxyz,1234", b"5,6\n"].concat();
        assert_eq!(
            scan(&long),
            (line(35, 36, false, true, true), vec![15, 27, 33, 35])
        );
    }

    proptest! {
        #[test]
        fn vector_masks_match_the_bytewise_ones(
            block in proptest::array::uniform16(prop_oneof![
                proptest::sample::select(b",;\"\r\n\t\x7f\x1f\x20\x80\xff a".to_vec()),
                any::<u8>(),
            ]),
            semicolon in any::<bool>(),
        ) {
            let delimiter = if semicolon { b';' } else { b',' };
            prop_assert_eq!(masks(&block, delimiter), masks_bytewise(&block, delimiter));
        }

        /// The scan agrees with a plain reading of the line.
        #[test]
        fn scan_matches_a_plain_reading(
            text in proptest::collection::vec(
                proptest::sample::select(b"ab,\"\r\n\t\xc3\xa9".to_vec()),
                0..80,
            ),
        ) {
            let (got, ends) = scan(&text);
            match text.iter().position(|&b| b == b'\n') {
                None => prop_assert_eq!(got, None),
                Some(at) => {
                    let line = &text[..at];
                    let body = line.strip_suffix(b"\r").unwrap_or(line);
                    let mut want_ends: Vec<usize> = body
                        .iter()
                        .enumerate()
                        .filter(|(_, &b)| b == b',')
                        .map(|(i, _)| i)
                        .collect();
                    want_ends.push(body.len());
                    let needs_parser = body.contains(&b'"') || body.contains(&b'\r');
                    prop_assert_eq!(got.map(|l| l.needs_parser), Some(needs_parser));
                    // The rest only matters for lines read in place.
                    if needs_parser {
                        return Ok(());
                    }
                    prop_assert_eq!(got, Some(Line {
                        len: body.len(),
                        consumed: at + 1,
                        needs_parser,
                        ascii: body.is_ascii(),
                        no_control: !body.iter().any(|b| b.is_ascii_control()),
                    }));
                    prop_assert_eq!(ends, want_ends);
                }
            }
        }
    }
}
