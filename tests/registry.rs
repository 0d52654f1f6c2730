//! `istv registry` as a process, through the client the services use, on
//! SQLite and PostgreSQL: the istv schemas registered at start, the same
//! schema again, lookups by id, compatibility, the levels, a restart that
//! keeps every id, and a decoder given its writer schemas through it.

use istv_e2e::fresh_pg_database;
use istv_e2e::registry::Registry;
use istv_server::registry_client::{ClientError, RegistryClient};
use istv_wire::{encode, Decoder, Schema, WireError};
use std::time::Duration;

fn client(registry: &Registry) -> RegistryClient {
    RegistryClient::new(&registry.url, Duration::from_secs(10))
}

fn journey(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path(), database_url, &["--register-schemas"]);
    let c = client(&registry);
    // Registered at start in topic order: one id each.
    let subjects = [
        "istv.attendances.v1-value",
        "istv.rejections.v1-value",
        "istv.geocoded.v1-value",
        "istv.aggregates.v1-value",
    ];
    for (i, subject) in subjects.iter().enumerate() {
        let latest = c.latest(subject).unwrap().expect("registered at start");
        assert_eq!((latest.version, latest.id), (1, i as u32 + 1), "{subject}");
    }
    let attendance = istv_core::schema::ATTENDANCE_V1;
    assert_eq!(c.register(subjects[0], attendance).unwrap(), 1);
    let text = c.schema(1).unwrap().unwrap();
    assert_eq!(
        Schema::parse_str(&text).unwrap(),
        *istv_core::schema::attendance_v1()
    );
    assert_eq!(c.schema(99).unwrap(), None);
    assert_eq!(c.latest("nope-value").unwrap(), None);

    // BACKWARD: a reader without patient_sex reads the current records; one
    // that reads record_id as a long does not.
    let without_sex = attendance.replace(
        r#",
    {"name": "patient_sex", "type": ["null", "string"], "default": null, "doc": "female, male, other, not_known"}"#,
        "",
    );
    assert_ne!(without_sex, attendance);
    let long_id = attendance.replace(
        r#"{"name": "record_id", "type": "string""#,
        r#"{"name": "record_id", "type": "long""#,
    );
    assert_ne!(long_id, attendance);
    assert!(c
        .is_compatible(subjects[0], "latest", &without_sex)
        .unwrap());
    assert!(!c.is_compatible(subjects[0], "1", &long_id).unwrap());
    match c.register(subjects[0], &long_id) {
        Err(ClientError::Refused {
            status: 409,
            error_code: 409,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    match c.register(subjects[0], r#"{"type": "record", "name": "X"}"#) {
        Err(ClientError::Refused {
            status: 422,
            error_code: 42201,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(c.register(subjects[0], &without_sex).unwrap(), 5);
    assert_eq!(c.latest(subjects[0]).unwrap().unwrap().version, 2);

    assert_eq!(c.level().unwrap(), "BACKWARD");
    c.set_level("FULL").unwrap();
    assert_eq!(c.level().unwrap(), "FULL");
    assert!(matches!(
        c.set_level("SIDEWAYS"),
        Err(ClientError::Refused {
            error_code: 42203,
            ..
        })
    ));

    // A consumer's decoder learns writer schemas through the client.
    let mut decoder = Decoder::new(istv_core::schema::attendance_v1().clone());
    let value = istv_wire::Value::Record(
        Schema::parse_str(&without_sex)
            .map(|s| match s {
                Schema::Record(r) => r.fields,
                _ => unreachable!(),
            })
            .unwrap()
            .iter()
            .map(|f| {
                let v = match f.name.as_str() {
                    "site_code" => istv_wire::Value::String("RJ122".into()),
                    "record_id" => istv_wire::Value::String("A-1".into()),
                    "assault_datetime" => istv_wire::Value::String("2024-03-01".into()),
                    "assault_method" => istv_wire::Value::String("firearm".into()),
                    "assault_location_type" => istv_wire::Value::String("home".into()),
                    _ => istv_wire::Value::Null,
                };
                (f.name.clone(), v)
            })
            .collect(),
    );
    let message = encode(5, &Schema::parse_str(&without_sex).unwrap(), value).unwrap();
    assert_eq!(decoder.decode(&message), Err(WireError::UnknownSchema(5)));
    c.prepare(&mut decoder, Some(&message)).unwrap();
    let decoded = decoder.decode(&message).unwrap();
    assert_eq!(decoded.schema_id, 5);
    let istv_wire::Value::Record(fields) = decoded.value else {
        unreachable!()
    };
    assert_eq!(fields.len(), 15);
    assert_eq!(fields[3].1, istv_wire::Value::String("2024-03-01".into()));
    // An id the registry does not know stays unknown: a dead letter.
    let mut unknown = message.clone();
    unknown[4] = 77;
    c.prepare(&mut decoder, Some(&unknown)).unwrap();
    assert_eq!(decoder.decode(&unknown), Err(WireError::UnknownSchema(77)));

    // A restart keeps every id and version.
    assert!(registry.terminate().success());
    let again = Registry::start(dir.path(), database_url, &["--register-schemas"]);
    let c = client(&again);
    assert_eq!(
        c.register(subjects[3], istv_core::schema::AGGREGATE_V1)
            .unwrap(),
        4
    );
    assert_eq!(c.latest(subjects[0]).unwrap().unwrap().id, 5);
    assert_eq!(c.level().unwrap(), "FULL");
}

#[test]
fn registry_journey_sqlite() {
    journey(None);
}

#[test]
fn registry_journey_postgres() {
    let url = fresh_pg_database("istv_registry");
    journey(Some(&url));
}

#[test]
fn an_unreachable_registry_is_an_error_not_a_missing_schema() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = RegistryClient::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5));
    assert!(matches!(c.schema(1), Err(ClientError::Unreachable { .. })));
}
