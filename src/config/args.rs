//! Converts request parameters to their declared types (SPEC §4: `ID`, `String`, `Int`, `Float`,
//! `Boolean`, `JSON`, `[T]`, `!`).

use crate::config::model::{BaseType, ParamType, ScalarType};
use serde_json::Value;

/// Converts a JSON value (a body field or a default) to `ty`. The error says what was expected.
pub fn convert(v: &Value, ty: &ParamType) -> Result<Value, String> {
    if v.is_null() {
        return if ty.required {
            Err(format!("must be a non-null {ty}"))
        } else {
            Ok(Value::Null)
        };
    }
    match &ty.base {
        BaseType::List(inner) => match v {
            Value::Array(items) => items
                .iter()
                .map(|i| convert(i, inner))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
                .map_err(|e| format!("items {e}")),
            _ => Err(format!("must be a list ({ty})")),
        },
        BaseType::Scalar(s) => {
            let ok = match (s, v) {
                (ScalarType::Json, _) => Some(v.clone()),
                (ScalarType::Id, Value::String(_)) => Some(v.clone()),
                (ScalarType::Id, Value::Number(n)) if n.is_i64() || n.is_u64() => Some(Value::String(n.to_string())),
                (ScalarType::String, Value::String(_)) => Some(v.clone()),
                (ScalarType::Int, Value::Number(n)) if n.as_i64().is_some_and(fits_int) => Some(v.clone()),
                (ScalarType::Float, Value::Number(_)) => Some(v.clone()),
                (ScalarType::Boolean, Value::Bool(_)) => Some(v.clone()),
                _ => None,
            };
            ok.ok_or_else(|| format!("must be {}", article(ty)))
        }
    }
}

/// Converts text from a path, query string or header to `ty`. Several texts come from a repeated
/// query parameter and make a list.
pub fn convert_text(texts: &[&str], ty: &ParamType) -> Result<Value, String> {
    match &ty.base {
        BaseType::List(inner) => texts
            .iter()
            .map(|t| convert_text(&[t], inner))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array)
            .map_err(|e| format!("items {e}")),
        BaseType::Scalar(s) => {
            let Some(text) = texts.last() else {
                return Ok(Value::Null);
            };
            let parsed = match s {
                ScalarType::Id | ScalarType::String => Some(Value::String(text.to_string())),
                ScalarType::Int => text
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|i| fits_int(*i))
                    .map(Value::from),
                // A whole number stays as written (`3`, not `3.0`), as a JSON body's or a GraphQL
                // argument's does: the backend gets the same text from every surface.
                ScalarType::Float => text.trim().parse::<i64>().ok().map(Value::from).or_else(|| {
                    text.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                }),
                ScalarType::Boolean => match *text {
                    "true" => Some(Value::Bool(true)),
                    "false" => Some(Value::Bool(false)),
                    _ => None,
                },
                ScalarType::Json => {
                    Some(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string())))
                }
            };
            parsed.ok_or_else(|| format!("must be {}", article(ty)))
        }
    }
}

/// `Int` is GraphQL's: 32 bits, on REST as in GraphQL (where async-graphql refuses more) and in
/// the OpenAPI document (`format: int32`), so one value means the same on every surface.
fn fits_int(i: i64) -> bool {
    i32::try_from(i).is_ok()
}

fn article(ty: &ParamType) -> String {
    let name = ty.to_string();
    let name = name.trim_end_matches('!');
    match &ty.base {
        BaseType::Scalar(ScalarType::Int) => "an Int (a whole number from -2147483648 to 2147483647)".into(),
        BaseType::Scalar(ScalarType::Id) => "an ID (a string or whole number)".into(),
        BaseType::Scalar(ScalarType::Float) => "a Float (a number)".into(),
        BaseType::Scalar(ScalarType::Boolean) => "a Boolean (true or false)".into(),
        _ => format!("a {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> ParamType {
        ParamType::parse(s).unwrap()
    }

    #[test]
    fn json_values() {
        assert_eq!(convert(&json!(3), &t("ID!")).unwrap(), json!("3"));
        assert!(convert(&json!(1.5), &t("Int")).is_err());
        assert!(convert(&Value::Null, &t("Int!")).is_err());
        assert_eq!(convert(&json!(["a"]), &t("[String!]")).unwrap(), json!(["a"]));
        assert!(convert(&json!([1]), &t("[String!]")).is_err());
    }

    #[test]
    fn text_values() {
        assert_eq!(convert_text(&["5"], &t("Int")).unwrap(), json!(5));
        assert!(convert_text(&["five"], &t("Int")).is_err());
        assert_eq!(convert_text(&["a", "b"], &t("[String]")).unwrap(), json!(["a", "b"]));
        assert_eq!(convert_text(&["true"], &t("Boolean")).unwrap(), json!(true));
    }

    #[test]
    fn an_int_has_graphqls_32_bits() {
        assert_eq!(convert_text(&["2147483647"], &t("Int")).unwrap(), json!(2147483647));
        assert_eq!(
            convert(&json!(-2147483648i64), &t("Int")).unwrap(),
            json!(-2147483648i64)
        );
        assert!(convert_text(&["2147483648"], &t("Int")).is_err());
        assert!(convert(&json!(-2147483649i64), &t("Int")).is_err());
        assert!(convert(&json!([1, 3000000000u64]), &t("[Int]")).is_err());
    }

    #[test]
    fn a_whole_float_stays_as_written_like_a_json_one() {
        let text = convert_text(&["3"], &t("Float")).unwrap();
        assert_eq!(text, convert(&json!(3), &t("Float")).unwrap());
        assert_eq!(text.to_string(), "3");
        assert_eq!(convert_text(&["2.5"], &t("Float")).unwrap(), json!(2.5));
        assert_eq!(convert_text(&["1e3"], &t("Float")).unwrap(), json!(1000.0));
        assert!(convert_text(&["NaN"], &t("Float")).is_err());
    }
}
