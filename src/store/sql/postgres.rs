//! How shared parameter values and columns cross to PostgreSQL's types (feature
//! `postgres`): a value binds as
//! the type the statement's parameter has (an integer of any width, or a BOOLEAN for a
//! flag), and integer and flag columns decode from any integer width or a BOOLEAN.

use std::error::Error;

use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

use super::{Param, Value};

type BoxError = Box<dyn Error + Sync + Send>;

/// A [`Value`] as a PostgreSQL parameter.
#[derive(Debug)]
pub(crate) struct PgValue<'a>(pub Value<'a>);

impl ToSql for PgValue<'_> {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => int_to_sql(i, ty, out),
            Value::Bool(b) if *ty == Type::BOOL => b.to_sql(ty, out),
            Value::Bool(b) => int_to_sql(i64::from(b), ty, out),
            Value::Text(s) => s.to_sql(ty, out),
            Value::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value in `to_sql`, which knows which kind of value it holds.
        true
    }

    to_sql_checked!();
}

/// A parameter value owned, for a statement sent later (`Db::execute_later`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OwnedValue {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
    Blob(Vec<u8>),
}

impl From<Value<'_>> for OwnedValue {
    fn from(value: Value<'_>) -> OwnedValue {
        match value {
            Value::Null => OwnedValue::Null,
            Value::Int(i) => OwnedValue::Int(i),
            Value::Bool(b) => OwnedValue::Bool(b),
            Value::Text(s) => OwnedValue::Text(s.to_owned()),
            Value::Blob(b) => OwnedValue::Blob(b.to_vec()),
        }
    }
}

impl Param for OwnedValue {
    fn value(&self) -> Value<'_> {
        match self {
            OwnedValue::Null => Value::Null,
            OwnedValue::Int(i) => Value::Int(*i),
            OwnedValue::Bool(b) => Value::Bool(*b),
            OwnedValue::Text(s) => Value::Text(s),
            OwnedValue::Blob(b) => Value::Blob(b),
        }
    }
}

/// An integer as the parameter's integer width; one that does not fit is an error.
fn int_to_sql(i: i64, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
    match *ty {
        Type::INT8 => i.to_sql(ty, out),
        Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
        Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
        Type::BOOL => match i {
            0 | 1 => (i == 1).to_sql(ty, out),
            _ => Err(format!("{i} is not a flag (0 or 1)").into()),
        },
        _ => Err(format!("an integer cannot be a {ty} parameter").into()),
    }
}

/// An integer column of any width.
pub(crate) struct AnyInt(i64);

impl<'a> FromSql<'a> for AnyInt {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(AnyInt(match *ty {
            Type::INT8 => i64::from_sql(ty, raw)?,
            Type::INT4 => i32::from_sql(ty, raw)?.into(),
            Type::INT2 => i16::from_sql(ty, raw)?.into(),
            Type::BOOL => bool::from_sql(ty, raw)?.into(),
            _ => return Err(format!("a {ty} column is not an integer").into()),
        }))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::INT8 | Type::INT4 | Type::INT2 | Type::BOOL)
    }
}

impl From<AnyInt> for i64 {
    fn from(i: AnyInt) -> i64 {
        i.0
    }
}

/// A flag: a BOOLEAN, or an integer column holding 0 or 1.
pub(crate) struct AnyBool(bool);

impl<'a> FromSql<'a> for AnyBool {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        match AnyInt::from_sql(ty, raw)?.0 {
            0 => Ok(AnyBool(false)),
            1 => Ok(AnyBool(true)),
            other => Err(format!("{other} is not a flag (0 or 1)").into()),
        }
    }

    fn accepts(ty: &Type) -> bool {
        AnyInt::accepts(ty)
    }
}

impl From<AnyBool> for bool {
    fn from(b: AnyBool) -> bool {
        b.0
    }
}
