//! UK postcode syntax: full unit postcodes (`SW1A 1AA`) and the partial forms
//! EDs send when the full one is unknown: sector (`SW1A 1`) and district
//! (`SW1A`).

/// How much of a postcode was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PostcodePart {
    /// Outward and full inward code, e.g. `SW1A 1AA`.
    Unit,
    /// Outward code and the inward digit, e.g. `SW1A 1`.
    Sector,
    /// Outward code only, e.g. `SW1A`.
    District,
}

/// A syntactically valid postcode in canonical form: upper case, one space
/// between outward and inward parts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Postcode {
    text: String,
    part: PostcodePart,
}

impl Postcode {
    /// Parses a full or partial postcode, ignoring case and spacing.
    pub fn parse(input: &str) -> Option<Postcode> {
        let mut compact = [0u8; 8];
        let mut n = 0;
        // Compact length before the last run of spaces: a sector needs its
        // space ("N1 1"), since unspaced "N11" is district N11.
        let mut before_last_space = None;
        let mut pending_space = false;
        for b in crate::record::trim(input).bytes() {
            if b == b' ' {
                pending_space = true;
                continue;
            }
            if n == compact.len() || !b.is_ascii_alphanumeric() {
                return None;
            }
            if pending_space {
                before_last_space = Some(n);
                pending_space = false;
            }
            compact[n] = b.to_ascii_uppercase();
            n += 1;
        }
        let s = &compact[..n];
        // Full: outward (2-4) + inward (digit letter letter).
        if n >= 5 && is_inward(&s[n - 3..]) && is_outward(&s[..n - 3]) {
            return Some(Postcode::build(
                &s[..n - 3],
                &s[n - 3..],
                PostcodePart::Unit,
            ));
        }
        if n >= 3
            && before_last_space == Some(n - 1)
            && s[n - 1].is_ascii_digit()
            && is_outward(&s[..n - 1])
        {
            return Some(Postcode::build(
                &s[..n - 1],
                &s[n - 1..],
                PostcodePart::Sector,
            ));
        }
        if before_last_space.is_none() && is_outward(s) {
            return Some(Postcode::build(s, b"", PostcodePart::District));
        }
        None
    }

    fn build(outward: &[u8], inward: &[u8], part: PostcodePart) -> Postcode {
        let mut text = String::with_capacity(8);
        text.push_str(std::str::from_utf8(outward).expect("ascii"));
        if !inward.is_empty() {
            text.push(' ');
            text.push_str(std::str::from_utf8(inward).expect("ascii"));
        }
        Postcode { text, part }
    }

    /// Canonical text, e.g. `SW1A 1AA`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// How much was given.
    pub fn part(&self) -> PostcodePart {
        self.part
    }

    /// The outward code (district), e.g. `SW1A`.
    pub fn district(&self) -> &str {
        self.text.split(' ').next().unwrap_or(&self.text)
    }

    /// The sector, e.g. `SW1A 1`, when more than the district was given.
    pub fn sector(&self) -> Option<&str> {
        match self.part {
            PostcodePart::District => None,
            _ => Some(&self.text[..self.district().len() + 2]),
        }
    }
}

impl std::fmt::Display for Postcode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn is_inward(s: &[u8]) -> bool {
    s.len() == 3
        && s[0].is_ascii_digit()
        && s[1].is_ascii_alphabetic()
        && s[2].is_ascii_alphabetic()
}

/// Outward code layouts: A9, A99, AA9, AA99, A9A, AA9A (and the special
/// non-geographic GIR).
fn is_outward(s: &[u8]) -> bool {
    let a = |i: usize| s.get(i).is_some_and(u8::is_ascii_alphabetic);
    let d = |i: usize| s.get(i).is_some_and(u8::is_ascii_digit);
    match s.len() {
        2 => a(0) && d(1),
        3 => {
            (a(0) && d(1) && d(2))
                || (a(0) && a(1) && d(2))
                || (a(0) && d(1) && a(2))
                || s == b"GIR"
        }
        4 => (a(0) && a(1) && d(2) && d(3)) || (a(0) && a(1) && d(2) && a(3)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        let cases = [
            ("sw1a1aa", "SW1A 1AA", PostcodePart::Unit),
            ("SW1A 1AA", "SW1A 1AA", PostcodePart::Unit),
            (" e1  6an ", "E1 6AN", PostcodePart::Unit),
            ("W1D 3QU", "W1D 3QU", PostcodePart::Unit),
            ("BR1 1AB", "BR1 1AB", PostcodePart::Unit),
            ("N9 9DY", "N9 9DY", PostcodePart::Unit),
            ("SW1A", "SW1A", PostcodePart::District),
            ("E11", "E11", PostcodePart::District),
            ("E1 1", "E1 1", PostcodePart::Sector),
            ("BR1 1", "BR1 1", PostcodePart::Sector),
            ("SW1A 1", "SW1A 1", PostcodePart::Sector),
            ("se15 4", "SE15 4", PostcodePart::Sector),
        ];
        for (input, want, part) in cases {
            let p = Postcode::parse(input).unwrap_or_else(|| panic!("{input}"));
            assert_eq!((p.as_str(), p.part()), (want, part), "{input}");
        }
        let p = Postcode::parse("SE15 4QL").unwrap();
        assert_eq!(p.district(), "SE15");
        assert_eq!(p.sector(), Some("SE15 4"));
        assert_eq!(Postcode::parse("SE15").unwrap().sector(), None);
    }

    #[test]
    fn rejects_non_postcodes() {
        for bad in [
            "",
            "1AA",
            "SW1A 1AAA",
            "12345",
            "LONDON",
            "SW1A-1AA",
            "S",
            "SW1A 1A",
            "QQQQ 1AA",
            "SW 1A",
        ] {
            assert_eq!(Postcode::parse(bad), None, "{bad:?}");
        }
    }
}
