//! Every metric the Grafana dashboards and the Prometheus alert rules of
//! `deploy/` name must exist, with the labels the queries match on, in the
//! `/metrics` output of running services: `istv serve`, and the Kafka
//! services (`istv ingest`, `istv geocode`, `istv aggregate`) on a real
//! broker (tansu) after an upload and a poison message. A name none of them
//! exposes fails the test, with where it is used.

use istv_e2e::aggregate::{metric, Aggregator};
use istv_e2e::process::Service;
use istv_e2e::registry::Registry;
use istv_e2e::tansu::{producer_config, Tansu};
use istv_e2e::*;
use istv_wire::topics;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Series Prometheus makes itself for every target.
const PROMETHEUS_SERIES: &[(&str, &[&str])] = &[("up", &[])];

/// Labels Prometheus adds to every scraped series.
const TARGET_LABELS: &[&str] = &["job", "instance"];

/// A label matcher: (label, operator, value).
type Matcher = (String, String, String);

/// A vector selector of a query: the metric and its label matchers.
#[derive(Debug, PartialEq, Eq)]
struct Selector {
    metric: String,
    matchers: Vec<Matcher>,
}

/// PromQL words that are not metric names.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "inf",
    "nan",
];

/// Words followed by a list of label names in parentheses.
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

/// The end (exclusive) of the string literal opening at `i`.
fn skip_string(s: &[u8], i: usize) -> usize {
    let quote = s[i];
    let mut j = i + 1;
    while j < s.len() && s[j] != quote {
        j += if s[j] == b'\\' { 2 } else { 1 };
    }
    assert!(
        j < s.len(),
        "unterminated string in {:?}",
        String::from_utf8_lossy(s)
    );
    j + 1
}

/// The end (exclusive) of the bracketed group opening at `i`.
fn skip_group(s: &[u8], i: usize, open: u8, close: u8) -> usize {
    let mut depth = 0;
    let mut j = i;
    while j < s.len() {
        match s[j] {
            b'"' | b'\'' | b'`' => {
                j = skip_string(s, j);
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    panic!(
        "unbalanced {} in {:?}",
        open as char,
        String::from_utf8_lossy(s)
    );
}

fn next_non_space(s: &[u8], mut i: usize) -> Option<(usize, u8)> {
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    s.get(i).map(|c| (i, *c))
}

/// The label matchers between `{` and `}`.
fn matchers(body: &str) -> Vec<Matcher> {
    let s = body.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let Some((start, c)) = next_non_space(s, i) else {
            return out;
        };
        if c == b',' {
            i = start + 1;
            continue;
        }
        assert!(is_ident_start(c), "bad matcher in {{{body}}}");
        let mut j = start;
        while j < s.len() && is_ident(s[j]) {
            j += 1;
        }
        let label = body[start..j].to_string();
        let (op_start, _) = next_non_space(s, j).expect("matcher operator");
        let op_len = if body[op_start..].starts_with("=~")
            || body[op_start..].starts_with("!=")
            || body[op_start..].starts_with("!~")
        {
            2
        } else {
            assert_eq!(s[op_start], b'=', "bad matcher operator in {{{body}}}");
            1
        };
        let op = body[op_start..op_start + op_len].to_string();
        let (v_start, _) = next_non_space(s, op_start + op_len).expect("matcher value");
        let v_end = skip_string(s, v_start);
        let value = body[v_start + 1..v_end - 1].to_string();
        out.push((label, op, value));
        i = v_end;
    }
}

/// Every vector selector of a PromQL query (Grafana's `$variables`
/// allowed): identifiers that are neither functions, keywords nor label
/// names, with their matchers.
fn selectors(expr: &str) -> Vec<Selector> {
    let s = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        match c {
            b'"' | b'\'' | b'`' => i = skip_string(s, i),
            // Ranges and subqueries: durations, or a Grafana variable.
            b'[' => i = skip_group(s, i, b'[', b']'),
            b'{' => panic!("a selector without a metric name in {expr:?}"),
            b'$' => {
                i += 1;
                while i < s.len() && is_ident(s[i]) {
                    i += 1;
                }
            }
            // Numbers and durations (0.5, 1e3, 15m).
            c if c.is_ascii_digit()
                || (c == b'.' && s.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == b'.') {
                    i += 1;
                }
            }
            c if is_ident_start(c) => {
                let start = i;
                while i < s.len() && is_ident(s[i]) {
                    i += 1;
                }
                let word = &expr[start..i];
                let next = next_non_space(s, i);
                if GROUPING.contains(&word) {
                    if let Some((p, b'(')) = next {
                        i = skip_group(s, p, b'(', b')');
                    }
                } else if KEYWORDS.contains(&word) || matches!(next, Some((_, b'('))) {
                    // An operator, or a function whose arguments follow.
                } else {
                    let mut m = Vec::new();
                    if let Some((p, b'{')) = next {
                        let end = skip_group(s, p, b'{', b'}');
                        m = matchers(&expr[p + 1..end - 1]);
                        i = end;
                    }
                    out.push(Selector {
                        metric: word.to_string(),
                        matchers: m,
                    });
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// The `expr:` of every rule of a Prometheus rules file, with the rule's
/// name (`alert:` or `record:`), and the recording rules' names. Reads the
/// file as written in `deploy/`: `expr:` on one line or as a `|` block.
fn rule_exprs(text: &str) -> (Vec<(String, String)>, BTreeSet<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut exprs = Vec::new();
    let mut records = BTreeSet::new();
    let mut name = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start().trim_start_matches("- ");
        if let Some(n) = trimmed.strip_prefix("alert:") {
            name = n.trim().to_string();
        } else if let Some(n) = trimmed.strip_prefix("record:") {
            name = n.trim().to_string();
            records.insert(name.clone());
        } else if let Some(rest) = trimmed.strip_prefix("expr:") {
            let rest = rest.trim();
            let expr = if rest.starts_with('|') || rest.starts_with('>') {
                let indent = line.len() - line.trim_start().len();
                let mut body = Vec::new();
                while i + 1 < lines.len() {
                    let next = lines[i + 1];
                    let deeper = next.len() - next.trim_start().len() > indent;
                    if !next.trim().is_empty() && !deeper {
                        break;
                    }
                    body.push(next.trim());
                    i += 1;
                }
                body.join(" ")
            } else {
                rest.trim_matches(|c| c == '\'' || c == '"').to_string()
            };
            assert!(!expr.trim().is_empty(), "rule {name} has an empty expr");
            exprs.push((name.clone(), expr));
        }
        i += 1;
    }
    (exprs, records)
}

/// Every query of a Grafana dashboard: the panels' targets and the
/// template variables (`label_values(metric, label)` gives its metric).
fn dashboard_exprs(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().unwrap_or("?");
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("a target's expr");
            out.push((format!("panel {title:?}"), expr.to_string()));
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let query = var["query"]["query"]
            .as_str()
            .or(var["query"].as_str())
            .unwrap_or("");
        let name = var["name"].as_str().unwrap_or("?");
        if let Some(args) = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
        {
            let (metric, label) = args.rsplit_once(',').expect("label_values(metric, label)");
            let label = label.trim();
            // The variable's label, as an =~ matcher, is checked with the metric's.
            let metric = metric.trim();
            let selector = match metric.strip_suffix('}') {
                Some(open) => format!("{open},{label}=~\".*\"}}"),
                None => format!("{metric}{{{label}=~\".*\"}}"),
            };
            out.push((format!("variable {name:?}"), selector));
        } else if !query.is_empty() {
            out.push((format!("variable {name:?}"), query.to_string()));
        }
    }
    out
}

/// The series of an exposition: metric name to the label sets it has.
fn exposed(text: &str) -> BTreeMap<String, Vec<BTreeMap<String, String>>> {
    let mut out: BTreeMap<String, Vec<BTreeMap<String, String>>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let end = line.find(['{', ' ']).expect("a sample line");
        let name = line[..end].to_string();
        let mut labels = BTreeMap::new();
        if line[end..].starts_with('{') {
            let close = end + skip_group(&line.as_bytes()[end..], 0, b'{', b'}');
            for (label, _, value) in matchers(&line[end + 1..close - 1]) {
                labels.insert(label, value);
            }
        }
        out.entry(name).or_default().push(labels);
    }
    out
}

/// Why a selector does not match what the services expose, if it does not.
fn problem(
    sel: &Selector,
    exposed: &BTreeMap<String, Vec<BTreeMap<String, String>>>,
    records: &BTreeSet<String>,
) -> Option<String> {
    let target_label = |l: &str| TARGET_LABELS.contains(&l);
    if records.contains(&sel.metric) {
        return None;
    }
    if let Some(series) = exposed.get(&sel.metric) {
        for (label, op, value) in &sel.matchers {
            if target_label(label) {
                continue;
            }
            // An exact match must meet a series with that value; any other
            // matcher a series with that label.
            let found = series.iter().any(|s| match op.as_str() {
                "=" => s.get(label) == Some(value),
                _ => s.contains_key(label),
            });
            if !found {
                return Some(format!(
                    "the services expose {} but no series with {label}{op}\"{value}\" (series: {series:?})",
                    sel.metric
                ));
            }
        }
        return None;
    }
    if let Some((_, labels)) = PROMETHEUS_SERIES.iter().find(|(n, _)| *n == sel.metric) {
        for (label, _, _) in &sel.matchers {
            if !target_label(label) && !labels.contains(&label.as_str()) {
                return Some(format!("Prometheus's {} has no label {label}", sel.metric));
            }
        }
        return None;
    }
    Some(format!("{} is in no service's /metrics", sel.metric))
}

/// What the dashboards and rules query, by where: (place, expr).
fn deploy_queries() -> (Vec<(String, String)>, BTreeSet<String>) {
    // This test's own package (crates/istv) is two levels below the root.
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let rules_path = deploy.join("prometheus/rules.yml");
    let rules_text = std::fs::read_to_string(&rules_path).unwrap();
    let (exprs, records) = rule_exprs(&rules_text);
    // Every rule was read: as many exprs as alert and record entries.
    let rules = rules_text
        .lines()
        .filter(|l| {
            let t = l.trim_start().trim_start_matches("- ");
            t.starts_with("alert:") || t.starts_with("record:")
        })
        .count();
    assert_eq!(exprs.len(), rules, "an expr of rules.yml was not read");
    assert!(rules >= 4, "rules.yml has {rules} rules");
    let mut all: Vec<(String, String)> = exprs
        .into_iter()
        .map(|(name, e)| (format!("rules.yml rule {name}"), e))
        .collect();
    let mut dashboards: Vec<_> = std::fs::read_dir(deploy.join("grafana/dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    dashboards.sort();
    assert!(dashboards.len() >= 2, "dashboards: {dashboards:?}");
    for path in dashboards {
        let d: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        for (place, expr) in dashboard_exprs(&d) {
            all.push((format!("{file} {place}"), expr));
        }
    }
    (all, records)
}

/// The tokenizer on a query whose metrics and matchers are known.
#[test]
fn selectors_are_read_from_queries() {
    let q = r#"histogram_quantile(0.99, sum by (le, job) (rate(a_bucket{x="1", y=~"$site"}[$__rate_interval])))
        / on (site) group_left max without (instance) (b) > bool 0.5 or time() - c_total offset 5m
        and sum(d:rec{z!="q,}"}) unless count_values("v", e) * 1e3"#;
    let got: Vec<(String, Vec<Matcher>)> = selectors(q)
        .into_iter()
        .map(|s| (s.metric, s.matchers))
        .collect();
    let m = |l: &str, o: &str, v: &str| (l.to_string(), o.to_string(), v.to_string());
    assert_eq!(
        got,
        vec![
            (
                "a_bucket".to_string(),
                vec![m("x", "=", "1"), m("y", "=~", "$site")]
            ),
            ("b".to_string(), vec![]),
            ("c_total".to_string(), vec![]),
            ("d:rec".to_string(), vec![m("z", "!=", "q,}")]),
            ("e".to_string(), vec![]),
        ]
    );
    let (exprs, records) = rule_exprs(
        "groups:\n  - name: g\n    rules:\n      - record: r:x\n        expr: sum(x)\n      - alert: A\n        expr: |\n          r:x\n          > 1\n        for: 5m\n",
    );
    assert_eq!(
        exprs,
        vec![
            ("r:x".to_string(), "sum(x)".to_string()),
            ("A".to_string(), "r:x > 1".to_string())
        ]
    );
    assert_eq!(records, BTreeSet::from(["r:x".to_string()]));
}

/// The exposition parser keeps each series' labels.
#[test]
fn exposition_is_read() {
    let e = exposed("# HELP a x\n# TYPE a counter\na{k=\"v\",j=\"w\"} 1\na{k=\"u\"} 2\nb 3\n");
    assert_eq!(e.len(), 2);
    assert_eq!(e["a"].len(), 2);
    assert_eq!(e["a"][0]["j"], "w");
    assert_eq!(e["a"][1]["k"], "u");
    assert!(e["b"][0].is_empty());
}

/// A selector is checked against the exposed series and Prometheus's own
/// series, and fails when it matches none.
#[test]
fn unknown_names_and_labels_are_problems() {
    let exposed = exposed(
        "istv_x_total{code=\"a\"} 1\n\
         istv_dead_letters_total{topic=\"t\",reason=\"bad_frame\"} 1\n\
         istv_h_bucket{le=\"0.5\"} 1\n",
    );
    let none = BTreeSet::new();
    let sel = |q: &str| selectors(q).remove(0);
    assert_eq!(
        problem(&sel("istv_x_total{code=\"a\"}"), &exposed, &none),
        None
    );
    assert!(problem(&sel("istv_x_total{code=\"b\"}"), &exposed, &none).is_some());
    assert!(problem(&sel("istv_x_total{site=~\".*\"}"), &exposed, &none).is_some());
    assert_eq!(problem(&sel("istv_h_bucket"), &exposed, &none), None);
    assert_eq!(
        problem(
            &sel("istv_dead_letters_total{reason=\"bad_frame\"}"),
            &exposed,
            &none
        ),
        None
    );
    assert!(problem(&sel("istv_dead_letters_total{site=\"x\"}"), &exposed, &none).is_some());
    assert!(problem(&sel("istv_nothing"), &exposed, &none).is_some());
    let records = BTreeSet::from(["r:x".to_string()]);
    assert_eq!(problem(&sel("r:x"), &exposed, &records), None);
    assert_eq!(problem(&sel("up{job=\"x\"}"), &exposed, &none), None);
}

const HEADER: &str = "site_code,record_id,assault_datetime,assault_method,assault_location_type,assault_latitude,assault_longitude,patient_age,patient_sex\n";

#[test]
fn dashboards_and_rules_use_only_exposed_metrics() {
    let (queries, records) = deploy_queries();

    // A server that has seen an upload with an accepted and a rejected row
    // (labelled families appear once they have a series), a site without
    // uploads and a revoked one.
    let dir = tempfile::tempdir().unwrap();
    import_boroughs(dir.path());
    let token = add_site(dir.path(), None, "RJ122");
    istv_ok(
        dir.path(),
        None,
        &[
            "sites",
            "add",
            "--code",
            "R1H12",
            "--name",
            "Quiet site",
            "--expected-interval-days",
            "7",
        ],
    );
    add_site(dir.path(), None, "RGONE");
    istv_ok(dir.path(), None, &["sites", "revoke", "--code", "RGONE"]);
    let server = Server::start(dir.path(), None, &[]);
    let feed = format!(
        "{HEADER}RJ122,D1,2024-01-05T22:00,sharp_object,street,51.5080,-0.1281,19,male\n\
         RJ122,D2,2024-01-06T22:00,body_part,street,51.4627,-0.1145,30,female\n\
         RJ122,D3,2024-01-07T22:00,knife,street,51.4627,-0.1145,30,female\n"
    );
    let (status, receipt) = post_upload(&server.base, &token, "text/csv", feed.as_bytes());
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(
        (receipt["accepted"].as_u64(), receipt["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    let (status, text) = get(&format!("{}/metrics", server.base));
    assert_eq!(status, 200, "{text}");
    let serve = exposed(&text);

    // The per-site series the dashboards and alerts read, as uploaded:
    // 3 rows, 2 accepted, 1 rejected; intervals 35 and 7 days; none for
    // the revoked site; a last upload only for the site that uploaded.
    let value = |name: &str, labels: &[(&str, &str)]| -> Option<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| {
                let (series, _) = l.rsplit_once(' ').unwrap();
                let want: Vec<String> =
                    labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
                series.split('{').next() == Some(name)
                    && (labels.is_empty() && !series.contains('{')
                        || want.iter().all(|w| series.contains(w.as_str())))
            })
            .map(|l| l.rsplit_once(' ').unwrap().1.to_string())
    };
    let rows = |outcome| {
        value(
            "istv_site_records_total",
            &[("site", "RJ122"), ("outcome", outcome)],
        )
    };
    assert_eq!(rows("received").as_deref(), Some("3"), "{text}");
    assert_eq!(rows("accepted").as_deref(), Some("2"), "{text}");
    assert_eq!(rows("rejected").as_deref(), Some("1"), "{text}");
    let interval = |site| value("istv_site_expected_interval_seconds", &[("site", site)]);
    assert_eq!(interval("RJ122").as_deref(), Some("3024000"));
    assert_eq!(interval("R1H12").as_deref(), Some("604800"));
    assert_eq!(interval("RGONE"), None, "{text}");
    assert!(value(
        "istv_site_registered_timestamp_seconds",
        &[("site", "R1H12")]
    )
    .is_some());
    assert!(value(
        "istv_site_last_upload_timestamp_seconds",
        &[("site", "RJ122")]
    )
    .is_some());
    assert_eq!(
        value(
            "istv_site_last_upload_timestamp_seconds",
            &[("site", "R1H12")]
        ),
        None
    );

    let mut exposed = serve;
    for (name, series) in kafka_services_exposed() {
        exposed.entry(name).or_default().extend(series);
    }
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for (place, expr) in &queries {
        let found = selectors(expr);
        if found.is_empty() {
            problems.push(format!("{place}: no metric in {expr:?}"));
        }
        for sel in found {
            used.insert(sel.metric.clone());
            if let Some(p) = problem(&sel, &exposed, &records) {
                problems.push(format!("{place}: {p}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "metrics of deploy/ that the services do not expose:\n  {}",
        problems.join("\n  ")
    );
    // What the panels and alerts of the issue need is among them.
    for needed in [
        "istv_site_records_total",
        "istv_records_rejected_total",
        "istv_dead_letters_total",
        "istv_kafka_consumer_lag",
        "istv_upload_to_visible_seconds_bucket",
        "istv_site_last_upload_timestamp_seconds",
        "istv_site_expected_interval_seconds",
    ] {
        assert!(
            used.contains(needed),
            "no dashboard or rule uses {needed}: {used:?}"
        );
    }
}

/// The series a consumer needs for the lag panels and alerts: a lag gauge
/// per partition of `topic`, labelled `topic` and `partition`.
fn has_lag(series: &BTreeMap<String, Vec<BTreeMap<String, String>>>, topic: &str) -> bool {
    series.get("istv_kafka_consumer_lag").is_some_and(|s| {
        s.iter().any(|l| {
            l.get("topic").map(String::as_str) == Some(topic) && l.contains_key("partition")
        })
    })
}

/// The series of `istv ingest`, `istv geocode` and `istv aggregate`, merged,
/// on a tansu broker once an upload (two rows accepted, one rejected) went
/// through to the store, and a message with a bad frame to the dead-letter
/// topic. Each service's own families are checked on the way: what the
/// panels and alerts of the Kafka dashboard group by must be there.
fn kafka_services_exposed() -> BTreeMap<String, Vec<BTreeMap<String, String>>> {
    let tansu = Tansu::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    istv_ok(
        data,
        None,
        &[
            "topics",
            "create",
            "--brokers",
            &tansu.brokers,
            "--partitions",
            "2",
            "--replication-factor",
            "1",
        ],
    );
    let registry = Registry::start(data, None, &["--register-schemas"]);
    import_boroughs(data);
    let token = add_site(data, None, "RJ122");
    // Statistics (and so the lag gauges) every half second, not every 5 s.
    let stats = ["--kafka-option", "statistics.interval.ms=500"];
    let (ingest, ingest_base) =
        Service::ingest(data, &tansu.brokers, &registry.url, &["--no-warm-geocoder"]);
    // geocode reads the content key ingest made.
    let geocode_args = [&stats[..], &["--transactional-id", "metrics-geocode"]].concat();
    let geocode = Service::geocode(data, &tansu.brokers, &registry.url, &geocode_args);
    let db = fresh_pg_database("deploy_metrics");
    let aggregator = Aggregator::start(
        data,
        &db,
        &[
            &[
                "--brokers",
                &tansu.brokers,
                "--schema-registry-url",
                &registry.url,
            ][..],
            &stats,
        ]
        .concat(),
    );

    let feed = format!(
        "{HEADER}RJ122,K1,2024-01-05T22:00,sharp_object,street,51.5080,-0.1281,19,male\n\
         RJ122,K2,2024-01-06T22:00,body_part,street,51.4627,-0.1145,30,female\n\
         RJ122,K3,2024-01-07T22:00,knife,street,51.4627,-0.1145,30,female\n"
    );
    let (status, receipt) = post_upload(&ingest_base, &token, "text/csv", feed.as_bytes());
    assert_eq!(status, 200, "{receipt}\n{}", ingest.log());
    assert_eq!(
        (receipt["accepted"].as_u64(), receipt["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    let producer: BaseProducer = {
        let mut c = rdkafka::ClientConfig::new();
        for (k, v) in producer_config(&tansu.brokers) {
            c.set(k, v);
        }
        c.create().unwrap()
    };
    producer
        .send(
            BaseRecord::to(topics::ATTENDANCES)
                .key("RJ122/K9")
                .payload(&b"RJ122,K9,2024-01-08"[..]),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();

    // Until both rows are counted, the poison is a dead letter, and both
    // consumers have reported the lag of the partitions they read.
    let scrape = || {
        let ingest = get(&format!("{ingest_base}/metrics")).1;
        let geocode = get_with(&geocode.announced, None).1;
        (ingest, geocode, aggregator.metrics())
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let (ingest_text, geocode_text, aggregate_text) = loop {
        let (i, g, a) = scrape();
        let (gs, as_) = (exposed(&g), exposed(&a));
        if metric(&a, "istv_aggregate_events_total", &[]) >= 2.0
            && metric(&g, "istv_dead_letters_total", &[]) >= 1.0
            && has_lag(&gs, topics::ATTENDANCES)
            && has_lag(&as_, topics::GEOCODED)
        {
            break (i, g, a);
        }
        assert!(
            Instant::now() < deadline,
            "the Kafka services did not get there:\ngeocode:\n{g}\naggregate:\n{a}\n{}\n{}",
            geocode.log(),
            aggregator.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // Exact figures where they are known: 2 rows produced by ingest and
    // consumed by geocode (the poison counts as consumed too), 2 geocoded
    // events, 1 dead letter with its reason, 2 events in the store.
    assert_eq!(
        metric(
            &ingest_text,
            "istv_kafka_produced_total",
            &[topics::ATTENDANCES]
        ),
        2.0,
        "{ingest_text}"
    );
    assert_eq!(
        metric(
            &geocode_text,
            "istv_kafka_consumed_total",
            &[topics::ATTENDANCES]
        ),
        3.0,
        "{geocode_text}"
    );
    assert_eq!(
        metric(
            &geocode_text,
            "istv_kafka_produced_total",
            &[&format!("\"{}\"", topics::GEOCODED)]
        ),
        2.0,
        "{geocode_text}"
    );
    assert_eq!(
        metric(
            &geocode_text,
            "istv_dead_letters_total",
            &[topics::ATTENDANCES, "reason=\"bad_frame\""]
        ),
        1.0,
        "{geocode_text}"
    );
    assert_eq!(
        metric(
            &aggregate_text,
            "istv_aggregate_events_total",
            &["accepted"]
        ),
        2.0,
        "{aggregate_text}"
    );
    assert_eq!(
        metric(&aggregate_text, "istv_upload_to_visible_seconds_count", &[]),
        2.0,
        "{aggregate_text}"
    );
    let mut all = exposed(&ingest_text);
    for text in [&geocode_text, &aggregate_text] {
        for (name, series) in exposed(text) {
            all.entry(name).or_default().extend(series);
        }
    }
    all
}
