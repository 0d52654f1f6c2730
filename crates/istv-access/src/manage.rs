//! Who may manage which users: an organisation's administrator manages its
//! own organisation's users, granting no more than it has itself; an admin
//! manages every organisation's. Admin accounts are made and changed with
//! the CLI only.

use crate::{Denied, Principal, Profile, Role, Scope, User};

/// The user who may manage users: an org_admin or an admin.
pub fn may_manage_users(principal: &Principal) -> Result<&User, Denied> {
    match principal {
        Principal::Site(_) => Err(Denied::SiteToken),
        Principal::User(u) if matches!(u.role, Role::OrgAdmin | Role::Admin) => Ok(u),
        Principal::User(u) => Err(Denied::CannotManageUsers(u.role)),
    }
}

/// True when `manager` sees the users of organisation `org` (an admin every
/// organisation's). Users of other organisations are answered as not found.
pub fn sees_org(manager: &User, org: &str) -> bool {
    manager.role == Role::Admin || manager.org == org
}

/// Whether `manager` may give a user this role, scope and profile: never
/// admin; for an org_admin a scope within its own and a profile no finer
/// and with no dimension it lacks.
pub fn may_grant(
    manager: &User,
    role: Role,
    scope: &Scope,
    profile: &Profile,
) -> Result<(), Denied> {
    if role == Role::Admin {
        return Err(Denied::AdminByCli);
    }
    if manager.role == Role::Admin {
        return Ok(());
    }
    within(&manager.scope, scope)?;
    let mine = &manager.profile;
    if profile.max_resolution > mine.max_resolution {
        return Err(Denied::GrantResolution {
            asked: profile.max_resolution,
            max: mine.max_resolution,
        });
    }
    if profile.finest_area > mine.finest_area {
        return Err(Denied::GrantArea {
            asked: profile.finest_area.as_str(),
            finest: mine.finest_area.as_str(),
        });
    }
    if let Some(allowed) = &mine.dimensions {
        match &profile.dimensions {
            None => return Err(Denied::GrantAllDimensions),
            Some(asked) => {
                if let Some(d) = asked.iter().find(|d| !allowed.contains(d)) {
                    return Err(Denied::GrantDimension(*d));
                }
            }
        }
    }
    Ok(())
}

/// Whether `manager` may change `target` (disable it, set its password,
/// issue or revoke its tokens): a user of an organisation it sees (the
/// caller answers others as not found), not an admin, and for an org_admin
/// one whose scope and profile are within its own, so that nobody takes
/// over an account that sees more.
pub fn may_change(manager: &User, target: &User) -> Result<(), Denied> {
    if target.role == Role::Admin {
        return Err(Denied::AdminByCli);
    }
    may_grant(manager, target.role, &target.scope, &target.profile)
}

fn within(mine: &Scope, asked: &Scope) -> Result<(), Denied> {
    match (mine, asked) {
        (Scope::London, _) => Ok(()),
        (Scope::Boroughs(_), Scope::London) => Err(Denied::GrantScope {
            asked: "all".into(),
            scope: mine.to_string(),
        }),
        (Scope::Boroughs(codes), Scope::Boroughs(asked)) => {
            match asked.iter().find(|b| !codes.contains(*b)) {
                Some(b) => Err(Denied::GrantScope {
                    asked: b.clone(),
                    scope: mine.to_string(),
                }),
                None => Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AreaLevel;

    fn user(role: Role, scope: &str, profile: Profile) -> User {
        User {
            name: "m".into(),
            org: "BOR".into(),
            role,
            scope: Scope::parse(scope).unwrap(),
            profile,
            sites: vec![],
        }
    }

    fn limited() -> Profile {
        Profile {
            max_resolution: 8,
            finest_area: AreaLevel::Ward,
            dimensions: Some(Profile::parse_dimensions("month,borough,ward,sex").unwrap()),
        }
    }

    #[test]
    fn an_org_admin_grants_no_more_than_it_has() {
        let m = user(Role::OrgAdmin, "E09000001,E09000002", limited());
        let scope = |s: &str| Scope::parse(s).unwrap();
        let ok = |scope: &Scope, p: &Profile| may_grant(&m, Role::Analyst, scope, p);
        assert_eq!(ok(&scope("E09000001"), &limited()), Ok(()));
        assert_eq!(ok(&scope("E09000002,E09000001"), &limited()), Ok(()));
        let narrower = Profile {
            max_resolution: 7,
            finest_area: AreaLevel::Borough,
            dimensions: Some(Profile::parse_dimensions("month").unwrap()),
        };
        assert_eq!(ok(&scope("E09000002"), &narrower), Ok(()));
        let e = ok(&scope("E09000001,E09000003"), &limited()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "you cannot grant borough E09000003: it is outside your scope (E09000001,E09000002)"
        );
        let e = ok(&Scope::London, &limited()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "you cannot grant borough all: it is outside your scope (E09000001,E09000002)"
        );
        let finer = |f: fn(&mut Profile)| {
            let mut p = limited();
            f(&mut p);
            ok(&scope("E09000001"), &p).unwrap_err().to_string()
        };
        assert_eq!(
            finer(|p| p.max_resolution = 9),
            "you cannot grant resolution 9: your profile allows 8"
        );
        assert_eq!(
            finer(|p| p.finest_area = AreaLevel::Lsoa),
            "you cannot grant lsoa figures: your profile allows ward"
        );
        assert_eq!(
            finer(|p| p.dimensions = None),
            "you cannot grant every dimension: your profile lists some"
        );
        assert_eq!(
            finer(|p| p.dimensions = Some(Profile::parse_dimensions("month,age_band").unwrap())),
            "you cannot grant dimension age_band: it is not in your profile"
        );
        assert_eq!(
            may_grant(&m, Role::Admin, &scope("E09000001"), &limited()),
            Err(Denied::AdminByCli)
        );
        // Changing a user: only within the same limits.
        let wide = user(Role::Analyst, "all", Profile::FULL);
        assert!(may_change(&m, &wide).is_err());
        let narrow = user(Role::OrgAdmin, "E09000002", narrower);
        assert_eq!(may_change(&m, &narrow), Ok(()));
    }

    #[test]
    fn admins_grant_anything_but_admin_and_others_manage_nothing() {
        let admin = user(Role::Admin, "E09000001", limited());
        assert_eq!(
            may_grant(&admin, Role::OrgAdmin, &Scope::London, &Profile::FULL),
            Ok(())
        );
        let other_admin = user(Role::Admin, "all", Profile::FULL);
        assert_eq!(may_change(&admin, &other_admin), Err(Denied::AdminByCli));
        assert!(sees_org(&admin, "ANY"));
        let m = user(Role::OrgAdmin, "all", Profile::FULL);
        assert!(sees_org(&m, "BOR") && !sees_org(&m, "VRU"));
        for role in [Role::Analyst, Role::Uploader] {
            let p = Principal::User(user(role, "all", Profile::FULL));
            assert_eq!(may_manage_users(&p), Err(Denied::CannotManageUsers(role)));
        }
        assert_eq!(
            may_manage_users(&Principal::Site("RJ1".into())),
            Err(Denied::SiteToken)
        );
        assert!(may_manage_users(&Principal::User(m)).is_ok());
    }
}
