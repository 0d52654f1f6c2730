//! `istv.v1.Rejection` values of row errors, and back.

use super::{field, opt, MappingError};
use apache_avro::types::Value;
use istv_core::{ErrorCode, FieldError};

/// One problem with one row of an upload, as `istv.rejections.v1` carries
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The upload's id.
    pub upload_id: String,
    /// The problem (its row is the 1-based data row).
    pub error: FieldError,
}

/// The `istv.v1.Rejection` value of a row error of an upload.
pub fn rejection_value(upload_id: &str, error: &FieldError) -> Value {
    Value::Record(vec![
        ("upload_id".into(), Value::String(upload_id.to_owned())),
        // Rows are counted from 1; no file has 2^63 of them.
        ("row".into(), Value::Long(error.row as i64)),
        (
            "field".into(),
            match &error.field {
                None => Value::Union(0, Box::new(Value::Null)),
                Some(f) => Value::Union(1, Box::new(Value::String(f.clone()))),
            },
        ),
        ("code".into(), Value::String(error.code.as_str().to_owned())),
        ("message".into(), Value::String(error.message.clone())),
    ])
}

/// The rejection of an `istv.v1.Rejection` value.
pub fn rejection_from_value(value: &Value) -> Result<Rejection, MappingError> {
    let string = |name: &'static str| match field(value, name)? {
        Value::String(s) => Ok(s.clone()),
        _ => Err(MappingError::WrongType(name)),
    };
    let row = match field(value, "row")? {
        Value::Long(r) => u64::try_from(*r).map_err(|_| MappingError::OutOfRange("row"))?,
        _ => return Err(MappingError::WrongType("row")),
    };
    let field_name = match opt(field(value, "field")?) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(MappingError::WrongType("field")),
    };
    let code_text = string("code")?;
    let code = ErrorCode::ALL
        .into_iter()
        .find(|c| c.as_str() == code_text)
        .ok_or(MappingError::Unknown("code"))?;
    Ok(Rejection {
        upload_id: string("upload_id")?,
        error: FieldError {
            row,
            field: field_name,
            code,
            message: string("message")?,
        },
    })
}
