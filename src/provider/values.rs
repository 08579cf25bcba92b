//! Terraform values (`Value` = known | null | unknown) and the conversions the resources share.
//!
//! A `Value` has three cases (known, null, unknown until apply); these helpers make plan logic
//! say which one it handles.

use std::collections::BTreeMap;

use super::plugin::Value;

pub type V<T> = Value<T>;
pub type StrList = V<Vec<V<String>>>;
pub type StrMap = V<BTreeMap<String, V<String>>>;

/// A value as plan logic needs it: unknown (decided at apply), null, or known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum K<T> {
    Unknown,
    Null,
    Known(T),
}

impl<T> K<T> {
    pub fn known(self) -> Option<T> {
        match self {
            K::Known(t) => Some(t),
            _ => None,
        }
    }
    pub fn is_unknown(&self) -> bool {
        matches!(self, K::Unknown)
    }
}

pub fn k<T: Clone>(v: &V<T>) -> K<T> {
    match v {
        Value::Value(t) => K::Known(t.clone()),
        Value::Null => K::Null,
        Value::Unknown => K::Unknown,
    }
}

/// A list of strings: unknown if the list or any element is unknown; null elements dropped.
pub fn k_list(v: &StrList) -> K<Vec<String>> {
    match v {
        Value::Value(items) => {
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                match i {
                    Value::Value(s) => out.push(s.clone()),
                    Value::Null => {}
                    Value::Unknown => return K::Unknown,
                }
            }
            K::Known(out)
        }
        Value::Null => K::Null,
        Value::Unknown => K::Unknown,
    }
}

pub fn k_map(v: &StrMap) -> K<BTreeMap<String, String>> {
    match v {
        Value::Value(items) => {
            let mut out = BTreeMap::new();
            for (key, val) in items {
                match val {
                    Value::Value(s) => {
                        out.insert(key.clone(), s.clone());
                    }
                    Value::Null => {}
                    Value::Unknown => return K::Unknown,
                }
            }
            K::Known(out)
        }
        Value::Null => K::Null,
        Value::Unknown => K::Unknown,
    }
}

pub fn list_value(v: Option<Vec<String>>) -> StrList {
    match v {
        Some(items) => Value::Value(items.into_iter().map(Value::Value).collect()),
        None => Value::Null,
    }
}

pub fn map_value(v: Option<BTreeMap<String, String>>) -> StrMap {
    match v {
        Some(m) => Value::Value(m.into_iter().map(|(k, v)| (k, Value::Value(v))).collect()),
        None => Value::Null,
    }
}

pub fn opt<T>(v: Option<T>) -> V<T> {
    match v {
        Some(t) => Value::Value(t),
        None => Value::Null,
    }
}

/// `Some` for a known value, `None` for null or unknown.
pub fn get<T: Clone>(v: &V<T>) -> Option<T> {
    k(v).known()
}

/// Replaces a null with `default` (plan-time defaults of Optional+Computed attributes).
pub fn or_default<T>(v: V<T>, default: T) -> V<T> {
    match v {
        Value::Null => Value::Value(default),
        other => other,
    }
}
