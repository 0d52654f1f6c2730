//! `istv orgs` and `istv users`: organisations, users and their API
//! tokens, straight on the store.

use crate::config::Common;
use anyhow::Context;
use istv_access::{password, AreaLevel, Profile, Role, Scope};
use istv_store::NewUser;
use serde_json::{json, Value};
use std::io::BufRead;
use std::process::ExitCode;

/// `istv orgs ...`.
#[derive(clap::Subcommand)]
pub enum OrgsCommand {
    /// Add an organisation (a community safety partnership, the violence
    /// reduction unit, an NHS trust, the police).
    Add {
        /// Short code, e.g. VRU.
        code: String,
        /// Display name.
        #[arg(long)]
        name: String,
    },
    /// List organisations.
    List,
}

/// `istv users ...`.
#[derive(clap::Subcommand)]
pub enum UsersCommand {
    /// Add a user. The password is read from standard input with
    /// --password-stdin, or generated and printed once.
    Add(AddUser),
    /// List users.
    List,
    /// Disable a user: their tokens and sessions stop working.
    Disable {
        /// The user.
        name: String,
    },
    /// Set a new password (from --password-stdin, or generated and printed
    /// once); the user's sessions end.
    ResetPassword {
        /// The user.
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Issue a named API token for a user (printed once).
    Token {
        /// The user.
        user: String,
        /// The token's name, unique among the user's live tokens.
        #[arg(long)]
        name: String,
        /// Days until it expires [default: never].
        #[arg(long)]
        expires_days: Option<u32>,
    },
    /// Revoke one of a user's tokens, by name.
    RevokeToken {
        /// The user.
        user: String,
        /// The token's name.
        #[arg(long)]
        name: String,
    },
    /// List a user's tokens (never the tokens themselves).
    Tokens {
        /// The user.
        user: String,
    },
}

/// The flags of `istv users add`.
#[derive(clap::Args)]
pub struct AddUser {
    /// The sign-in name.
    name: String,
    /// The organisation's code.
    #[arg(long)]
    org: String,
    /// uploader, analyst, org_admin or admin.
    #[arg(long)]
    role: String,
    /// Geography: all, or borough codes such as E09000001,E09000033.
    #[arg(long, default_value = "all")]
    boroughs: String,
    /// Finest H3 resolution of cell figures, 7-10.
    #[arg(long, default_value_t = 10)]
    max_resolution: u8,
    /// Finest area level: borough, ward or lsoa.
    #[arg(long, default_value = "lsoa")]
    finest_area: String,
    /// Dimensions allowed, e.g. month,borough,assault_method [default: all].
    #[arg(long)]
    dimensions: Option<String>,
    /// ED sites of an uploader, e.g. RJ122,RYJ01.
    #[arg(long)]
    sites: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

impl OrgsCommand {
    fn audit(&self) -> Option<(&'static str, Value)> {
        match self {
            OrgsCommand::Add { code, name } => {
                Some(("orgs add", json!({"code": code, "name": name})))
            }
            OrgsCommand::List => None,
        }
    }
}

impl UsersCommand {
    /// The audit entry's action and arguments (never a password), for a
    /// command that changes something.
    fn audit(&self) -> Option<(&'static str, Value)> {
        Some(match self {
            UsersCommand::Add(a) => (
                "users add",
                json!({
                    "name": a.name, "org": a.org, "role": a.role, "boroughs": a.boroughs,
                    "max_resolution": a.max_resolution, "finest_area": a.finest_area,
                    "dimensions": a.dimensions, "sites": a.sites,
                    "password": if a.password_stdin { "stdin" } else { "generated" },
                }),
            ),
            UsersCommand::Disable { name } => ("users disable", json!({"name": name})),
            UsersCommand::ResetPassword {
                name,
                password_stdin,
            } => (
                "users reset-password",
                json!({"name": name, "password": if *password_stdin { "stdin" } else { "generated" }}),
            ),
            UsersCommand::Token {
                user,
                name,
                expires_days,
            } => (
                "users token",
                json!({"user": user, "name": name, "expires_days": expires_days}),
            ),
            UsersCommand::RevokeToken { user, name } => {
                ("users revoke-token", json!({"user": user, "name": name}))
            }
            UsersCommand::List | UsersCommand::Tokens { .. } => return None,
        })
    }
}

/// Runs `istv orgs`.
pub fn orgs(command: OrgsCommand, common: &Common) -> anyhow::Result<ExitCode> {
    let audit = command.audit();
    super::runtime()?.block_on(super::audit::audited(common, audit, |store| async move {
        match command {
            OrgsCommand::Add { code, name } => {
                store.add_org(&code, &name).await?;
                eprintln!("organisation {code} added");
            }
            OrgsCommand::List => {
                println!("code\tname\tcreated_at");
                for o in store.list_orgs().await? {
                    println!("{}\t{}\t{}", o.code, o.name, o.created_at.to_rfc3339());
                }
            }
        }
        Ok(())
    }))
}

/// The password to set: a line of standard input, or a new one printed
/// once (returned with `true`).
fn new_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let pw = line.trim_end_matches(['\r', '\n']).to_owned();
        return Ok((pw, false));
    }
    Ok((password::generate()?, true))
}

/// Parses the profile flags.
pub fn profile(
    max_resolution: u8,
    finest_area: &str,
    dimensions: Option<&str>,
) -> anyhow::Result<Profile> {
    anyhow::ensure!(
        (7..=10).contains(&max_resolution),
        "--max-resolution {max_resolution} is outside 7-10"
    );
    let finest_area = AreaLevel::parse(finest_area).with_context(|| {
        format!("--finest-area {finest_area:?}: expected borough, ward or lsoa")
    })?;
    Ok(Profile {
        max_resolution,
        finest_area,
        dimensions: dimensions.map(Profile::parse_dimensions).transpose()?,
    })
}

/// Runs `istv users`.
pub fn users(command: UsersCommand, common: &Common) -> anyhow::Result<ExitCode> {
    let audit = command.audit();
    super::runtime()?.block_on(super::audit::audited(common, audit, |store| async move {
        match command {
            UsersCommand::Add(a) => {
                let role = Role::parse(&a.role).with_context(|| {
                    format!(
                        "--role {:?}: expected uploader, analyst, org_admin or admin",
                        a.role
                    )
                })?;
                let scope = Scope::parse(&a.boroughs)?;
                let profile = profile(a.max_resolution, &a.finest_area, a.dimensions.as_deref())?;
                let sites: Vec<String> = a
                    .sites
                    .iter()
                    .flat_map(|s| s.split(','))
                    .map(|s| s.trim().to_ascii_uppercase())
                    .filter(|s| !s.is_empty())
                    .collect();
                let (pw, generated) = new_password(a.password_stdin)?;
                let hash = password::hash(&pw)?;
                store
                    .add_user(&NewUser {
                        name: &a.name,
                        org: &a.org,
                        role,
                        password_hash: &hash,
                        scope: &scope,
                        profile: &profile,
                        sites: &sites,
                    })
                    .await?;
                eprintln!("user {} added ({role}, boroughs {scope})", a.name);
                if generated {
                    eprintln!("their password (shown once):");
                    println!("{pw}");
                }
            }
            UsersCommand::List => {
                println!("name\torg\trole\tboroughs\tmax_resolution\tfinest_area\tdimensions\tsites\tdisabled");
                for a in store.list_accounts().await? {
                    let u = &a.user;
                    let dims = u.profile.dimensions.as_ref().map_or("all".to_string(), |d| {
                        d.iter().map(|d| d.name()).collect::<Vec<_>>().join(",")
                    });
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        u.name,
                        u.org,
                        u.role,
                        u.scope,
                        u.profile.max_resolution,
                        u.profile.finest_area.as_str(),
                        dims,
                        u.sites.join(","),
                        a.disabled
                    );
                }
            }
            UsersCommand::Disable { name } => {
                store.disable_user(&name).await?;
                eprintln!("user {name} disabled");
            }
            UsersCommand::ResetPassword {
                name,
                password_stdin,
            } => {
                let (pw, generated) = new_password(password_stdin)?;
                store.set_password(&name, &password::hash(&pw)?).await?;
                eprintln!("password of {name} set; their sessions ended");
                if generated {
                    eprintln!("the new password (shown once):");
                    println!("{pw}");
                }
            }
            UsersCommand::Token {
                user,
                name,
                expires_days,
            } => {
                let expires = expires_days
                    .map(|d| chrono::Utc::now() + chrono::TimeDelta::days(i64::from(d)));
                let token = store.issue_api_token(&user, &name, expires).await?;
                eprintln!(
                    "token {name} for {user}{} (keep it secret, it is not shown again):",
                    expires.map_or(String::new(), |t| format!(", expires {}", t.to_rfc3339()))
                );
                println!("{token}");
            }
            UsersCommand::RevokeToken { user, name } => {
                store.revoke_api_token(&user, &name).await?;
                eprintln!("token {name} of {user} revoked");
            }
            UsersCommand::Tokens { user } => {
                println!("name\tcreated_at\texpires_at\trevoked\tlast_used_at");
                let t = |t: Option<chrono::DateTime<chrono::Utc>>| {
                    t.map_or("-".to_string(), |t| t.to_rfc3339())
                };
                for k in store.list_api_tokens(&user).await? {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        k.name,
                        k.created_at.to_rfc3339(),
                        t(k.expires_at),
                        k.revoked,
                        t(k.last_used_at)
                    );
                }
            }
        }
        Ok(())
    }))
}
