//! Writing feeds: the demo generator, tests and benchmarks produce files in
//! every format from the same rows.

use crate::record::Field;
use crate::schema;
use apache_avro::types::{Record, Value};
use std::io::Write;

/// One row as text, by field; `None` is blank.
pub type TextRow = [Option<String>; Field::COUNT];

/// Why a row could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The output failed.
    #[error("cannot write the feed: {0}")]
    Io(#[from] std::io::Error),
    /// CSV encoding failed.
    #[error("cannot write CSV: {0}")]
    Csv(#[from] csv::Error),
    /// Avro encoding failed.
    #[error("cannot write Avro: {0}")]
    Avro(String),
    /// A value does not fit the Avro type of its field.
    #[error("row value for {field} does not fit its Avro type")]
    AvroType {
        /// The field.
        field: &'static str,
    },
}

/// Writes rows in one format.
pub enum FeedWriter<W: Write> {
    /// CSV with a header of every column.
    Csv(Box<csv::Writer<W>>),
    /// One JSON object per line; blank fields are left out.
    Jsonl(std::io::BufWriter<W>),
    /// An Avro container file with the `istv.v1.Attendance` schema.
    Avro(Box<apache_avro::Writer<'static, W>>),
}

impl<W: Write> FeedWriter<W> {
    /// A writer in `format`.
    pub fn new(format: super::Format, out: W) -> Result<Self, WriteError> {
        Ok(match format {
            super::Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(Field::ALL.iter().map(|f| f.name()))?;
                FeedWriter::Csv(Box::new(w))
            }
            super::Format::Jsonl => {
                FeedWriter::Jsonl(std::io::BufWriter::with_capacity(64 << 10, out))
            }
            super::Format::Avro => FeedWriter::Avro(Box::new(
                apache_avro::Writer::with_codec(
                    schema::attendance_v1(),
                    out,
                    apache_avro::Codec::Deflate(Default::default()),
                )
                .map_err(|e| WriteError::Avro(e.to_string()))?,
            )),
        })
    }

    /// Appends a row.
    pub fn write(&mut self, row: &TextRow) -> Result<(), WriteError> {
        match self {
            FeedWriter::Csv(w) => w.write_record(row.iter().map(|v| v.as_deref().unwrap_or("")))?,
            FeedWriter::Jsonl(w) => {
                let mut map = serde_json::Map::new();
                for (f, v) in Field::ALL.iter().zip(row) {
                    if let Some(v) = v {
                        map.insert(f.name().to_string(), json_value(*f, v));
                    }
                }
                serde_json::to_writer(&mut *w, &map).map_err(std::io::Error::from)?;
                w.write_all(b"\n")?;
            }
            FeedWriter::Avro(w) => {
                let mut record = Record::new(schema::attendance_v1()).expect("record schema");
                for (f, v) in Field::ALL.iter().zip(row) {
                    record.put(f.name(), avro_value(*f, v.as_deref())?);
                }
                w.append_value(record)
                    .map_err(|e| WriteError::Avro(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Flushes and returns the output.
    pub fn finish(self) -> Result<W, WriteError> {
        match self {
            FeedWriter::Csv(w) => w.into_inner().map_err(|e| WriteError::Io(e.into_error())),
            FeedWriter::Jsonl(w) => w.into_inner().map_err(|e| WriteError::Io(e.into_error())),
            FeedWriter::Avro(w) => w.into_inner().map_err(|e| WriteError::Avro(e.to_string())),
        }
    }
}

fn is_numeric(field: Field) -> bool {
    matches!(
        field,
        Field::AssaultLatitude
            | Field::AssaultLongitude
            | Field::AssaultEasting
            | Field::AssaultNorthing
            | Field::PatientAge
    )
}

/// Numbers as JSON numbers where they parse, as EDs' exporters write them.
fn json_value(field: Field, text: &str) -> serde_json::Value {
    if is_numeric(field) {
        if let Ok(i) = text.parse::<i64>() {
            return i.into();
        }
        if let Some(n) = text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            return serde_json::Value::Number(n);
        }
    }
    serde_json::Value::String(text.to_string())
}

fn avro_value(field: Field, text: Option<&str>) -> Result<Value, WriteError> {
    let required = matches!(
        field,
        Field::SiteCode
            | Field::RecordId
            | Field::AssaultDatetime
            | Field::AssaultMethod
            | Field::AssaultLocationType
    );
    let bad = || WriteError::AvroType {
        field: field.name(),
    };
    let Some(text) = text else {
        return if required {
            Ok(Value::String(String::new()))
        } else {
            Ok(Value::Union(0, Box::new(Value::Null)))
        };
    };
    let inner = match field {
        Field::PatientAge => Value::Int(text.parse().map_err(|_| bad())?),
        f if is_numeric(f) => Value::Double(text.parse().map_err(|_| bad())?),
        _ => Value::String(text.to_string()),
    };
    Ok(if required {
        inner
    } else {
        Value::Union(1, Box::new(inner))
    })
}
