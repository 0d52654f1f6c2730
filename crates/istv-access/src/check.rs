//! The checks: may this principal query, at this detail, in this geography;
//! upload for this site; read this site's receipts.

use crate::{AreaLevel, Principal, Role, Scope};
use istv_aggregate::{Dimension, Query};

/// Why a principal may not do what it asked, naming the limit. Each
/// message is for the caller (HTTP 403) and names no other user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// A site upload token used for something other than its uploads.
    #[error("a site upload token can only upload and read its own site's receipts; use a user's token to query")]
    SiteToken,
    /// A role that does not query figures.
    #[error("the {0} role cannot query figures")]
    CannotQuery(Role),
    /// A role that does not upload.
    #[error("the {0} role cannot upload; uploads need an uploader account or a site token")]
    CannotUpload(Role),
    /// A role that has no receipts.
    #[error("the {0} role cannot read upload receipts")]
    CannotReadReceipts(Role),
    /// An upload for a site the caller does not upload for.
    #[error("site {site} is not one of yours ({mine})")]
    NotYourSite {
        /// The site asked for.
        site: String,
        /// The caller's sites.
        mine: String,
    },
    /// An uploader of several sites who did not say which.
    #[error("you upload for several sites ({0}): name one with ?site=CODE")]
    SiteNeeded(String),
    /// A borough outside a borough scope.
    #[error("borough {borough} is outside your scope ({scope})")]
    OutsideScope {
        /// The borough asked for (`unknown` for records without one).
        borough: String,
        /// The caller's boroughs.
        scope: String,
    },
    /// Cells finer than the profile's resolution.
    #[error("resolution {asked} is finer than your profile allows ({max})")]
    ResolutionTooFine {
        /// The resolution asked for.
        asked: u8,
        /// The finest allowed.
        max: u8,
    },
    /// An area level finer than the profile's.
    #[error("{asked} figures are finer than your profile allows ({finest})")]
    AreaTooFine {
        /// The level asked for.
        asked: &'static str,
        /// The finest allowed.
        finest: &'static str,
    },
    /// A dimension the profile does not list.
    #[error("dimension {0} is not in your profile")]
    DimensionNotAllowed(Dimension),
    /// A role that does not manage users.
    #[error("the {0} role cannot manage users; an organisation's org_admin or an admin can")]
    CannotManageUsers(Role),
    /// An admin account made or changed over the API.
    #[error("admin accounts are made and changed with the istv command only")]
    AdminByCli,
    /// A scope wider than the manager's own.
    #[error("you cannot grant borough {asked}: it is outside your scope ({scope})")]
    GrantScope {
        /// The borough asked for (`all` for all of London).
        asked: String,
        /// The manager's boroughs.
        scope: String,
    },
    /// A resolution finer than the manager's own.
    #[error("you cannot grant resolution {asked}: your profile allows {max}")]
    GrantResolution {
        /// The resolution asked for.
        asked: u8,
        /// The manager's finest.
        max: u8,
    },
    /// An area level finer than the manager's own.
    #[error("you cannot grant {asked} figures: your profile allows {finest}")]
    GrantArea {
        /// The level asked for.
        asked: &'static str,
        /// The manager's finest.
        finest: &'static str,
    },
    /// Every dimension, by a manager limited to some.
    #[error("you cannot grant every dimension: your profile lists some")]
    GrantAllDimensions,
    /// A dimension the manager's profile lacks.
    #[error("you cannot grant dimension {0}: it is not in your profile")]
    GrantDimension(Dimension),
    /// A scope that cannot be read (CLI input).
    #[error("invalid borough code `{0}`: expected all or ONS borough codes such as E09000001")]
    InvalidScope(String),
    /// A dimension name that cannot be read (CLI input).
    #[error("unknown dimension `{0}`: expected one of {dims}", dims = Dimension::expected())]
    InvalidDimension(String),
}

/// Whether the principal may query figures at all.
pub fn may_query(principal: &Principal) -> Result<(), Denied> {
    match principal {
        Principal::Site(_) => Err(Denied::SiteToken),
        Principal::User(u) if u.role == Role::Uploader => Err(Denied::CannotQuery(u.role)),
        Principal::User(_) => Ok(()),
    }
}

/// Checks a query (of `/aggregates`, `/cells` or `/areas`, each parsed into
/// a [`Query`]: cells group by `cell` at the query's resolution, areas by
/// their level) against the principal's role, profile and scope, and
/// returns the query to run: for a borough scope without a `borough`
/// filter, the scope's boroughs are added as one (see the crate's scope
/// rule). An admin's queries are run as asked.
pub fn scope_query(principal: &Principal, query: Query) -> Result<Query, Denied> {
    may_query(principal)?;
    let Principal::User(user) = principal else {
        unreachable!("may_query refuses site tokens")
    };
    if user.role == Role::Admin {
        return Ok(query);
    }
    let profile = &user.profile;
    let mut used: Vec<Dimension> = query.group_by().to_vec();
    used.extend(query.filtered());
    used.sort();
    used.dedup();
    for d in used {
        if !profile.allows(d) {
            return Err(Denied::DimensionNotAllowed(d));
        }
        if let Some(level) = AreaLevel::of(d) {
            if level > profile.finest_area {
                return Err(Denied::AreaTooFine {
                    asked: level.as_str(),
                    finest: profile.finest_area.as_str(),
                });
            }
        }
        if d == Dimension::Cell {
            let asked = query.resolution().get();
            if asked > profile.max_resolution {
                return Err(Denied::ResolutionTooFine {
                    asked,
                    max: profile.max_resolution,
                });
            }
        }
    }
    let Scope::Boroughs(codes) = &user.scope else {
        return Ok(query);
    };
    match query.filter_labels(Dimension::Borough) {
        Some(asked) => {
            if let Some(outside) = asked.into_iter().find(|b| !codes.contains(b)) {
                return Err(Denied::OutsideScope {
                    borough: outside,
                    scope: user.scope.to_string(),
                });
            }
            Ok(query)
        }
        None => {
            let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
            Ok(query
                .with_filter(Dimension::Borough, &codes)
                .expect("scope boroughs are valid ONS codes"))
        }
    }
}

/// The site an upload is for: a site token's own site, or for an uploader
/// the site asked for (`?site=`), which may be omitted when the uploader
/// has one site.
pub fn may_upload(principal: &Principal, asked: Option<&str>) -> Result<String, Denied> {
    let asked = asked.map(str::to_ascii_uppercase);
    match principal {
        Principal::Site(code) => match asked {
            Some(a) if a != *code => Err(Denied::NotYourSite {
                site: a,
                mine: code.clone(),
            }),
            _ => Ok(code.clone()),
        },
        Principal::User(u) if u.role != Role::Uploader => Err(Denied::CannotUpload(u.role)),
        Principal::User(u) => match asked {
            Some(a) if u.sites.contains(&a) => Ok(a),
            Some(a) => Err(Denied::NotYourSite {
                site: a,
                mine: u.sites.join(","),
            }),
            None if u.sites.len() == 1 => Ok(u.sites[0].clone()),
            None => Err(Denied::SiteNeeded(u.sites.join(","))),
        },
    }
}

/// Whether the principal may read the receipts of uploads of `site`:
/// `Err` for a role that has no receipts, `Ok(false)` for another site's
/// upload (answered as not found, so ids of other sites are not
/// confirmed), `Ok(true)` for its own site's, or any for an admin.
pub fn may_read_receipt(principal: &Principal, site: &str) -> Result<bool, Denied> {
    match principal {
        Principal::Site(code) => Ok(code == site),
        Principal::User(u) => match u.role {
            Role::Admin => Ok(true),
            Role::Uploader => Ok(u.sites.iter().any(|s| s == site)),
            role => Err(Denied::CannotReadReceipts(role)),
        },
    }
}

#[cfg(test)]
mod tests;
