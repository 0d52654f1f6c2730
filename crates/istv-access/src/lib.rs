//! Who is asking and what they may see, with no I/O.
//!
//! A [`Principal`] is an authenticated caller: a user (with a [`Role`], a
//! geography [`Scope`] and a detail [`Profile`]) or an ED site's upload
//! token. [`scope_query`] checks a parsed [`istv_aggregate::Query`] against
//! a principal and returns the query to run, limited to the principal's
//! boroughs; [`may_upload`] and [`may_read_receipt`] decide the ingest
//! side. Passwords are hashed with argon2id ([`password`]).
//!
//! # The scope rule
//!
//! A caller limited to some boroughs sees only records placed in those
//! boroughs:
//!
//! * a `borough` filter must name only boroughs in scope (`unknown`, the
//!   records without a borough, is outside every borough scope): otherwise
//!   the query is refused, naming the borough;
//! * without a `borough` filter the scope's boroughs are added as one, so
//!   every grouping (month, ward, LSOA, cell, site, ...) counts only
//!   records in scope: a ward or a cell on the scope's edge shows only its
//!   part inside the scope.
#![warn(missing_docs)]

mod check;
mod manage;
pub mod password;

pub use check::{may_query, may_read_receipt, may_upload, scope_query, Denied};
pub use manage::{may_change, may_grant, may_manage_users, sees_org};

use istv_aggregate::Dimension;
use std::collections::BTreeSet;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Uploads for one or more ED sites; sees their receipts.
    Uploader,
    /// Queries figures within a scope and profile.
    Analyst,
    /// Manages the users of an organisation; queries as an analyst.
    OrgAdmin,
    /// Everything: all of London at full detail, every site's receipts.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Uploader, Role::Analyst, Role::OrgAdmin, Role::Admin];

    /// The name used in the CLI, the store and the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Uploader => "uploader",
            Role::Analyst => "analyst",
            Role::OrgAdmin => "org_admin",
            Role::Admin => "admin",
        }
    }

    /// The role of this exact name.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The geography a user's figures come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// All of London, and records without a place.
    London,
    /// Only records placed in these boroughs (ONS codes).
    Boroughs(BTreeSet<String>),
}

impl Scope {
    /// Parses `all` or a comma-separated list of borough codes
    /// (`E09000001,E09000033`, any case).
    pub fn parse(text: &str) -> Result<Scope, Denied> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("all") {
            return Ok(Scope::London);
        }
        let mut codes = BTreeSet::new();
        for part in text.split(',').map(str::trim) {
            let code = part.to_ascii_uppercase();
            let ok = code.len() == 9
                && code.starts_with("E09")
                && code.bytes().skip(1).all(|b| b.is_ascii_digit());
            if !ok {
                return Err(Denied::InvalidScope(part.to_owned()));
            }
            codes.insert(code);
        }
        Ok(Scope::Boroughs(codes))
    }

    /// True when a record of this borough (`None`: no borough) is in scope.
    pub fn contains(&self, borough: Option<&str>) -> bool {
        match (self, borough) {
            (Scope::London, _) => true,
            (Scope::Boroughs(codes), Some(b)) => codes.contains(b),
            (Scope::Boroughs(_), None) => false,
        }
    }
}

impl std::fmt::Display for Scope {
    /// `all` or the codes separated by commas, as [`Scope::parse`] reads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::London => f.write_str("all"),
            Scope::Boroughs(codes) => {
                let list: Vec<&str> = codes.iter().map(String::as_str).collect();
                f.write_str(&list.join(","))
            }
        }
    }
}

/// An area level, coarsest first (so `Borough < Ward < Lsoa`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AreaLevel {
    /// London boroughs.
    Borough,
    /// Electoral wards.
    Ward,
    /// Lower layer super output areas.
    Lsoa,
}

impl AreaLevel {
    /// The API name (the dimension's).
    pub const fn as_str(self) -> &'static str {
        match self {
            AreaLevel::Borough => "borough",
            AreaLevel::Ward => "ward",
            AreaLevel::Lsoa => "lsoa",
        }
    }

    /// The level of this exact name.
    pub fn parse(name: &str) -> Option<AreaLevel> {
        [AreaLevel::Borough, AreaLevel::Ward, AreaLevel::Lsoa]
            .into_iter()
            .find(|l| l.as_str() == name)
    }

    /// The level of an area dimension.
    pub fn of(d: Dimension) -> Option<AreaLevel> {
        match d {
            Dimension::Borough => Some(AreaLevel::Borough),
            Dimension::Ward => Some(AreaLevel::Ward),
            Dimension::Lsoa => Some(AreaLevel::Lsoa),
            _ => None,
        }
    }
}

/// How much detail a user may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The finest H3 resolution of `cell` figures (7-10).
    pub max_resolution: u8,
    /// The finest area level of figures.
    pub finest_area: AreaLevel,
    /// The dimensions that may be grouped or filtered by; `None` is all.
    pub dimensions: Option<BTreeSet<Dimension>>,
}

impl Profile {
    /// Every detail: resolution 10, LSOAs, every dimension.
    pub const FULL: Profile = Profile {
        max_resolution: 10,
        finest_area: AreaLevel::Lsoa,
        dimensions: None,
    };

    /// Parses a comma-separated list of dimension names.
    pub fn parse_dimensions(text: &str) -> Result<BTreeSet<Dimension>, Denied> {
        text.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| Dimension::parse(p).ok_or_else(|| Denied::InvalidDimension(p.to_owned())))
            .collect()
    }

    /// True when `d` may be grouped or filtered by.
    pub fn allows(&self, d: Dimension) -> bool {
        self.dimensions.as_ref().is_none_or(|set| set.contains(&d))
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile::FULL
    }
}

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user name.
    pub name: String,
    /// The organisation's code.
    pub org: String,
    /// The role.
    pub role: Role,
    /// The geography of the figures the user sees.
    pub scope: Scope,
    /// The detail of the figures the user sees.
    pub profile: Profile,
    /// The ED sites an uploader uploads for (empty for other roles).
    pub sites: Vec<String>,
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A user, by API token or session.
    User(User),
    /// An ED site's upload token: uploads and that site's receipts only.
    Site(String),
}

impl Principal {
    /// The name for logs and rate limits: the user name, or `site:CODE`.
    pub fn key(&self) -> String {
        match self {
            Principal::User(u) => u.name.clone(),
            Principal::Site(code) => format!("site:{code}"),
        }
    }
}
