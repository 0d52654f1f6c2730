//! Screening free text for NHS numbers.
//!
//! An NHS number is ten digits whose last is a modulus 11 check digit. It is
//! often written 3-3-4 with spaces or hyphens. A standalone one anywhere in
//! a free-text field rejects the row: the field must never carry an
//! identifier. Standalone means not inside a longer run of letters and
//! digits, so that ten digits inside a hexadecimal hash or a longer
//! reference are not taken for one.

/// True when `digits` (exactly ten ASCII digits) passes the NHS modulus 11 check.
pub fn is_valid_nhs_number(digits: &[u8; 10]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits[..9].iter().enumerate() {
        sum += u32::from(d - b'0') * (10 - i as u32);
    }
    let check = 11 - sum % 11;
    let check = if check == 11 { 0 } else { check };
    check != 10 && check == u32::from(digits[9] - b'0')
}

/// True when the text holds a token of exactly ten digits (optionally
/// grouped 3-3-4 by single spaces or hyphens), with no letter or digit just
/// before or after it, that passes the check.
pub fn contains_nhs_number(text: &str) -> bool {
    let b = text.as_bytes();
    // Fast exit: most text has fewer than ten digits.
    if b.iter().filter(|c| c.is_ascii_digit()).count() < 10 {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            if let Some(d) = read_candidate(&b[i..]) {
                if is_valid_nhs_number(&d) {
                    return true;
                }
            }
        }
        i += 1;
    }
    false
}

/// Ten digits from the start of `b`: plain, or grouped 3-3-4 with one
/// separator kind; the token must not continue with a letter or digit.
fn read_candidate(b: &[u8]) -> Option<[u8; 10]> {
    let plain = b.len() >= 10 && b[..10].iter().all(u8::is_ascii_digit);
    if plain {
        if b.get(10).is_some_and(u8::is_ascii_alphanumeric) {
            return None;
        }
        let mut d = [0u8; 10];
        d.copy_from_slice(&b[..10]);
        return Some(d);
    }
    if b.len() < 12 {
        return None;
    }
    let sep = b[3];
    if !(sep == b' ' || sep == b'-') || b[7] != sep {
        return None;
    }
    let groups = [&b[0..3], &b[4..7], &b[8..12]];
    if !groups.iter().all(|g| g.iter().all(u8::is_ascii_digit))
        || b.get(12).is_some_and(u8::is_ascii_alphanumeric)
    {
        return None;
    }
    let mut d = [0u8; 10];
    d[..3].copy_from_slice(groups[0]);
    d[3..6].copy_from_slice(groups[1]);
    d[6..].copy_from_slice(groups[2]);
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modulus_11_check() {
        // 943 476 5919 is the NHS's published example of a valid number:
        // 9*10+4*9+3*8+4*7+7*6+6*5+5*4+9*3+1*2 = 299; 299 mod 11 = 2; 11-2 = 9.
        assert!(is_valid_nhs_number(b"9434765919"));
        assert!(!is_valid_nhs_number(b"9434765918"));
        // 1*10 = 10; 10 mod 11 = 10; 11 - 10 = 1.
        assert!(is_valid_nhs_number(b"1000000001"));
        assert!(!is_valid_nhs_number(b"1000000010"));
        // Sum 0 gives 11, read as check digit 0.
        assert!(is_valid_nhs_number(b"0000000000"));
        // 6*2 = 12; 12 mod 11 = 1; 11 - 1 = 10, which no single digit can carry.
        for last in b'0'..=b'9' {
            let mut n = *b"0000000060";
            n[9] = last;
            assert!(!is_valid_nhs_number(&n), "{}", String::from_utf8_lossy(&n));
        }
    }

    #[test]
    fn finds_numbers_in_text_in_common_layouts() {
        assert!(contains_nhs_number("9434765919"));
        assert!(contains_nhs_number("pt 943 476 5919 outside"));
        assert!(contains_nhs_number("ref 943-476-5919"));
        assert!(!contains_nhs_number("943 476-5919"));
        assert!(!contains_nhs_number("9434765918"));
        // Part of a longer digit run is not an NHS number.
        assert!(!contains_nhs_number("19434765919"));
        assert!(!contains_nhs_number("94347659190"));
        assert!(!contains_nhs_number("outside the Red Lion, 12 Church St"));
        assert!(!contains_nhs_number(""));
        // Inside a longer token of letters and digits (a hash, a reference).
        assert!(!contains_nhs_number("a9434765919"));
        assert!(!contains_nhs_number("9434765919f"));
        assert!(!contains_nhs_number("ab943 476 5919"));
        assert!(!contains_nhs_number("943 476 5919x"));
        // Standalone beside punctuation, at either end.
        for text in [
            "NHS:9434765919",
            "(9434765919)",
            "id_9434765919_",
            "9434765919.",
            "\"943-476-5919\"",
            "no. 943 476 5919, seen",
        ] {
            assert!(contains_nhs_number(text), "{text}");
        }
    }

    /// A small deterministic generator (SplitMix64).
    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    #[test]
    fn hexadecimal_hashes_are_not_nhs_numbers() {
        let mut s = 7;
        let mut text = String::with_capacity(20);
        for _ in 0..1_000_000 {
            text.clear();
            let (a, b) = (splitmix(&mut s), splitmix(&mut s));
            text.push_str(&format!("{a:016x}{:04x}", b & 0xFFFF));
            assert!(!contains_nhs_number(&text), "{text}");
        }
    }

    #[test]
    fn every_valid_number_is_found_in_every_layout() {
        let mut s = 11;
        let mut found = 0;
        while found < 2_000 {
            let n = splitmix(&mut s) % 10_000_000_000;
            let digits: [u8; 10] = format!("{n:010}").into_bytes().try_into().unwrap();
            if !is_valid_nhs_number(&digits) {
                continue;
            }
            found += 1;
            let d = std::str::from_utf8(&digits).unwrap();
            let (a, b, c) = (&d[..3], &d[3..6], &d[6..]);
            for layout in [d.to_owned(), format!("{a} {b} {c}"), format!("{a}-{b}-{c}")] {
                for text in [
                    layout.clone(),
                    format!("patient {layout} seen"),
                    format!("NHS no: {layout}."),
                    format!("({layout})"),
                ] {
                    assert!(contains_nhs_number(&text), "{text}");
                }
            }
        }
    }
}
