//! Terraform values: `Value<T>` is known, null or unknown, and (de)serializes with serde so the
//! resources keep typed state structs. On the wire a value is msgpack (`DynamicValue.msgpack`;
//! state upgrades send JSON); unknown is msgpack extension 0, a *refined* unknown (Terraform
//! 1.6+) is extension 12, whose refinements we do not use and treat as plain unknown.
//!
//! How: msgpack is converted to a `serde_json::Value` tree in which an unknown is the one-entry
//! object `{UNKNOWN_KEY: true}` (no schema of ours has that attribute), and serde works on that
//! tree. Encoding is the reverse. Everything that comes from Terraform is checked: a malformed
//! value is an error message, never a panic.

use serde::de::{DeserializeOwned, Error as _};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value as Json};

use super::proto::DynamicValue;

/// The marker key of an unknown value inside the intermediate JSON tree.
const UNKNOWN_KEY: &str = "$ebssnap:unknown";
/// msgpack extension types Terraform uses for unknown values (plain and refined).
const EXT_UNKNOWN: i8 = 0;
const EXT_REFINED_UNKNOWN: i8 = 12;

/// A Terraform value of type `T`: known, null, or unknown until apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Value<T> {
    Value(T),
    #[default]
    Null,
    Unknown,
}

impl<T> Value<T> {
    /// Applies `f` to a known value; null and unknown stay as they are.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Value<U> {
        match self {
            Value::Value(t) => Value::Value(f(t)),
            Value::Null => Value::Null,
            Value::Unknown => Value::Unknown,
        }
    }
}

fn unknown_marker() -> Json {
    let mut m = Map::new();
    m.insert(UNKNOWN_KEY.into(), Json::Bool(true));
    Json::Object(m)
}

fn is_unknown_marker(j: &Json) -> bool {
    matches!(j, Json::Object(m) if m.len() == 1 && m.get(UNKNOWN_KEY) == Some(&Json::Bool(true)))
}

impl<T: Serialize> Serialize for Value<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Value(t) => t.serialize(s),
            Value::Null => s.serialize_none(),
            Value::Unknown => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry(UNKNOWN_KEY, &true)?;
                m.end()
            }
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Value<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let j = Json::deserialize(d)?;
        if j.is_null() {
            Ok(Value::Null)
        } else if is_unknown_marker(&j) {
            Ok(Value::Unknown)
        } else {
            T::deserialize(j)
                .map(Value::Value)
                .map_err(D::Error::custom)
        }
    }
}

/// A block nested as a list of at most one (how optional blocks travel): `[]` and null are
/// `Null`, `[x]` is `Value(x)`. Use with `#[serde(with = "as_list")]`.
pub mod as_list {
    use super::*;

    pub fn serialize<S: Serializer, T: Serialize>(v: &Value<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Value::Value(t) => [t].serialize(s),
            Value::Null => Vec::<T>::new().serialize(s),
            Value::Unknown => Value::<T>::Unknown.serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        d: D,
    ) -> Result<Value<T>, D::Error> {
        match Value::<Vec<Value<T>>>::deserialize(d)? {
            Value::Null => Ok(Value::Null),
            Value::Unknown => Ok(Value::Unknown),
            Value::Value(items) => {
                let mut items = items.into_iter();
                match (items.next(), items.next()) {
                    (None, _) => Ok(Value::Null),
                    (Some(first), None) => Ok(first),
                    (Some(_), Some(_)) => Err(D::Error::custom(
                        "at most one block of this type is allowed",
                    )),
                }
            }
        }
    }
}

/// msgpack (as Terraform sends it) to the intermediate tree.
fn from_msgpack(v: rmpv::Value) -> Result<Json, String> {
    use rmpv::Value as M;
    Ok(match v {
        M::Nil => Json::Null,
        M::Boolean(b) => Json::Bool(b),
        M::Integer(i) => {
            if let Some(n) = i.as_i64() {
                Json::Number(n.into())
            } else if let Some(n) = i.as_u64() {
                Json::Number(n.into())
            } else {
                return Err("integer out of range".into());
            }
        }
        M::F32(f) => float(f64::from(f))?,
        M::F64(f) => float(f)?,
        M::String(s) => match s.into_str() {
            Some(s) => Json::String(s),
            None => return Err("a string is not valid UTF-8".into()),
        },
        M::Binary(_) => return Err("unexpected binary value".into()),
        M::Array(items) => Json::Array(
            items
                .into_iter()
                .map(from_msgpack)
                .collect::<Result<_, _>>()?,
        ),
        M::Map(entries) => {
            let mut m = Map::new();
            for (k, v) in entries {
                let M::String(k) = k else {
                    return Err("an object key is not a string".into());
                };
                let Some(k) = k.into_str() else {
                    return Err("an object key is not valid UTF-8".into());
                };
                m.insert(k, from_msgpack(v)?);
            }
            Json::Object(m)
        }
        M::Ext(EXT_UNKNOWN | EXT_REFINED_UNKNOWN, _) => unknown_marker(),
        M::Ext(t, _) => return Err(format!("unexpected msgpack extension type {t}")),
    })
}

/// Whole floats become integers (Terraform numbers have no int/float distinction).
fn float(f: f64) -> Result<Json, String> {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        #[allow(clippy::cast_possible_truncation)]
        return Ok(Json::Number((f as i64).into()));
    }
    Number::from_f64(f)
        .map(Json::Number)
        .ok_or_else(|| format!("number {f} is not finite"))
}

fn to_msgpack(j: Json) -> rmpv::Value {
    use rmpv::Value as M;
    if is_unknown_marker(&j) {
        return M::Ext(EXT_UNKNOWN, vec![0]);
    }
    match j {
        Json::Null => M::Nil,
        Json::Bool(b) => M::Boolean(b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                M::from(i)
            } else if let Some(u) = n.as_u64() {
                M::from(u)
            } else {
                M::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => M::from(s),
        Json::Array(items) => M::Array(items.into_iter().map(to_msgpack).collect()),
        Json::Object(m) => M::Map(
            m.into_iter()
                .map(|(k, v)| (M::from(k), to_msgpack(v)))
                .collect(),
        ),
    }
}

/// The intermediate tree of a DynamicValue (msgpack, else JSON); `Null` when absent.
pub fn decode_tree(dv: Option<&DynamicValue>) -> Result<Json, String> {
    let Some(dv) = dv else { return Ok(Json::Null) };
    if !dv.msgpack.is_empty() {
        let v = rmpv::decode::read_value(&mut &dv.msgpack[..])
            .map_err(|e| format!("malformed msgpack value: {e}"))?;
        from_msgpack(v)
    } else if !dv.json.is_empty() {
        serde_json::from_slice(&dv.json).map_err(|e| format!("malformed JSON value: {e}"))
    } else {
        Ok(Json::Null)
    }
}

/// A value Terraform sent, typed; `None` when it is null (no prior state, a destroy plan).
pub fn decode<T: DeserializeOwned>(dv: Option<&DynamicValue>) -> Result<Option<T>, String> {
    let tree = decode_tree(dv)?;
    if tree.is_null() {
        return Ok(None);
    }
    decode_json(tree).map(Some)
}

/// A typed value from the intermediate tree (also state JSON).
pub fn decode_json<T: DeserializeOwned>(tree: Json) -> Result<T, String> {
    serde_json::from_value(tree).map_err(|e| format!("unexpected value shape: {e}"))
}

/// A typed value for Terraform (`None` is null).
pub fn encode<T: Serialize>(t: Option<&T>) -> Result<DynamicValue, String> {
    let tree = match t {
        Some(t) => serde_json::to_value(t).map_err(|e| format!("cannot encode value: {e}"))?,
        None => Json::Null,
    };
    Ok(encode_tree(tree))
}

pub fn encode_tree(tree: Json) -> DynamicValue {
    let mut buf = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut buf, &to_msgpack(tree));
    DynamicValue {
        msgpack: buf,
        json: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug, PartialEq, Serialize, Deserialize, Default)]
    #[serde(default)]
    struct Inner {
        a: Value<String>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize, Default)]
    #[serde(default)]
    struct S {
        name: Value<String>,
        n: Value<i64>,
        tags: Value<BTreeMap<String, Value<String>>>,
        list: Value<Vec<Value<String>>>,
        #[serde(with = "as_list")]
        block: Value<Inner>,
    }

    fn mp(v: rmpv::Value) -> DynamicValue {
        let mut buf = Vec::new();
        rmpv::encode::write_value(&mut buf, &v).unwrap();
        DynamicValue {
            msgpack: buf,
            json: vec![],
        }
    }

    #[test]
    fn unknown_null_and_known_round_trip_through_msgpack() {
        use rmpv::Value as M;
        let refined = M::Ext(12, vec![0x81, 0x01, 0xc2]);
        let v = mp(M::Map(vec![
            (M::from("name"), M::Ext(0, vec![0])),
            (M::from("n"), M::F64(30.0)),
            (
                M::from("tags"),
                M::Map(vec![(M::from("k"), refined.clone())]),
            ),
            (M::from("list"), M::Nil),
            (
                M::from("block"),
                M::Array(vec![M::Map(vec![(M::from("a"), M::from("x"))])]),
            ),
        ]));
        let s: S = decode(Some(&v)).unwrap().unwrap();
        assert_eq!(s.name, Value::Unknown);
        assert_eq!(s.n, Value::Value(30));
        assert_eq!(
            s.tags,
            Value::Value(BTreeMap::from([("k".to_string(), Value::Unknown)]))
        );
        assert_eq!(s.list, Value::Null);
        assert_eq!(
            s.block,
            Value::Value(Inner {
                a: Value::Value("x".into())
            })
        );
        let back: S = decode(Some(&encode(Some(&s)).unwrap())).unwrap().unwrap();
        assert_eq!(back, s);
        // An unknown is written as extension 0.
        let bytes = encode(Some(&Value::<String>::Unknown)).unwrap().msgpack;
        assert_eq!(bytes, vec![0xd4, 0x00, 0x00]);
    }

    #[test]
    fn empty_block_list_is_null_and_null_is_written_as_an_empty_list() {
        let s: S = decode_json(serde_json::json!({"block": []})).unwrap();
        assert_eq!(s.block, Value::Null);
        let j = serde_json::to_value(&s).unwrap();
        assert_eq!(j["block"], serde_json::json!([]));
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        assert!(
            decode::<S>(Some(&DynamicValue {
                msgpack: vec![0x92, 0x01], // an array of two holding one
                json: vec![]
            }))
            .is_err()
        );
        let bad_key = mp(rmpv::Value::Map(vec![(
            rmpv::Value::from(1),
            rmpv::Value::Nil,
        )]));
        assert!(decode::<S>(Some(&bad_key)).is_err());
        let wrong_type = mp(rmpv::Value::Map(vec![(
            rmpv::Value::from("n"),
            rmpv::Value::from("seven"),
        )]));
        assert!(decode::<S>(Some(&wrong_type)).is_err());
        let two_blocks = serde_json::json!({"block": [{"a": "x"}, {"a": "y"}]});
        assert!(decode_json::<S>(two_blocks).is_err());
        assert_eq!(decode::<S>(None).unwrap(), None);
    }

    #[test]
    fn state_json_decodes_like_msgpack() {
        let dv = DynamicValue {
            msgpack: vec![],
            json: br#"{"name":"std","n":7,"tags":null,"list":["a"],"block":[]}"#.to_vec(),
        };
        let s: S = decode(Some(&dv)).unwrap().unwrap();
        assert_eq!(s.name, Value::Value("std".into()));
        assert_eq!(s.list, Value::Value(vec![Value::Value("a".into())]));
    }
}
