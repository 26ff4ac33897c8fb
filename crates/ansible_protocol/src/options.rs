//! Typed module options from the args JSON, accepting what Ansible sends.
//!
//! A task written in YAML keeps its types, but ad-hoc `ansible -a 'k=v'`
//! delivers every value as a string. [`from_value`] is a serde deserializer
//! over `serde_json::Value` that converts the way AnsibleModule's type checks
//! do: `"yes"`/`"no"`/`"on"`/`"1"`… for booleans, `"3"` for integers, a
//! comma-separated string for a list, numbers and booleans for strings.
//! Errors name the option they concern.

use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

/// A problem with one option's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError(String);

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OptionError {}

impl de::Error for OptionError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        OptionError(msg.to_string())
    }
}

/// Deserialises `T` from the module's options (an object without the
/// `_ansible_*` keys), coercing strings like AnsibleModule.
pub fn from_value<T: DeserializeOwned>(options: Map<String, Value>) -> Result<T, OptionError> {
    T::deserialize(Lenient(Value::Object(options)))
}

/// The option names a struct declares (its serde field names), read from
/// its `Deserialize` implementation without constructing a value.
pub fn option_names<T: DeserializeOwned>() -> Vec<&'static str> {
    let mut probe = Probe(None);
    let _ = T::deserialize(&mut probe);
    probe.0.map(<[&str]>::to_vec).unwrap_or_default()
}

const TRUE_WORDS: &[&str] = &["y", "yes", "on", "1", "true", "t"];
const FALSE_WORDS: &[&str] = &["n", "no", "off", "0", "false", "f"];

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a dictionary".into(),
    }
}

fn expected(what: &str, v: &Value) -> OptionError {
    OptionError(format!("expected {what}, got {}", describe(v)))
}

struct Lenient(Value);

impl Lenient {
    fn integer(&self) -> Result<i128, OptionError> {
        match &self.0 {
            Value::Number(n) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from))
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                        .map(|f| f as i128)
                }),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .ok_or_else(|| expected("an integer", &self.0))
    }
}

macro_rules! integer_methods {
    ($($method:ident $visit:ident $ty:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionError> {
            let wide = self.integer()?;
            let narrow = <$ty>::try_from(wide).map_err(|_| {
                OptionError(format!("{wide} is out of range for {}", stringify!($ty)))
            })?;
            visitor.$visit(narrow)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Lenient {
    type Error = OptionError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => visitor.visit_seq(Seq(items.into_iter())),
            Value::Object(map) => visitor.visit_map(Fields {
                iter: map.into_iter(),
                pending: None,
            }),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionError> {
        let b = match &self.0 {
            Value::Bool(b) => Some(*b),
            Value::String(s) => {
                let s = s.trim().to_ascii_lowercase();
                if TRUE_WORDS.contains(&s.as_str()) {
                    Some(true)
                } else if FALSE_WORDS.contains(&s.as_str()) {
                    Some(false)
                } else {
                    None
                }
            }
            Value::Number(n) if n.as_f64() == Some(1.0) => Some(true),
            Value::Number(n) if n.as_f64() == Some(0.0) => Some(false),
            _ => None,
        };
        match b {
            Some(b) => visitor.visit_bool(b),
            None => Err(expected(
                "a boolean (yes/no, true/false, on/off, 1/0)",
                &self.0,
            )),
        }
    }

    integer_methods!(
        deserialize_i8 visit_i8 i8, deserialize_i16 visit_i16 i16,
        deserialize_i32 visit_i32 i32, deserialize_i64 visit_i64 i64,
        deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16,
        deserialize_u32 visit_u32 u32, deserialize_u64 visit_u64 u64
    );

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionError> {
        let f = match &self.0 {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match f {
            Some(f) => visitor.visit_f64(f),
            None => Err(expected("a number", &self.0)),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionError> {
        match self.0 {
            Value::String(s) => visitor.visit_string(s),
            Value::Number(n) => visitor.visit_string(n.to_string()),
            // AnsibleModule converts with Python's str(): True, False.
            Value::Bool(true) => visitor.visit_str("True"),
            Value::Bool(false) => visitor.visit_str("False"),
            other => Err(expected("a string", &other)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Lenient(other)),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionError> {
        let items = match self.0 {
            Value::Array(items) => items,
            // AnsibleModule splits a string given for a list on commas.
            Value::String(s) if s.trim().is_empty() => Vec::new(),
            Value::String(s) => s
                .split(',')
                .map(|part| Value::String(part.trim().to_string()))
                .collect(),
            Value::Null => return Err(expected("a list", &Value::Null)),
            other @ (Value::Number(_) | Value::Bool(_)) => vec![other],
            other => return Err(expected("a list", &other)),
        };
        visitor.visit_seq(Seq(items.into_iter()))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, OptionError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionError> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(Fields {
                iter: map.into_iter(),
                pending: None,
            }),
            // A dictionary given as a JSON string (ad-hoc -a 'k={"a":1}').
            Value::String(s) if s.trim_start().starts_with('{') => {
                match serde_json::from_str::<Value>(&s) {
                    Ok(Value::Object(map)) => visitor.visit_map(Fields {
                        iter: map.into_iter(),
                        pending: None,
                    }),
                    _ => Err(expected("a dictionary", &Value::String(s))),
                }
            }
            other => Err(expected("a dictionary", &other)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, OptionError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, OptionError> {
        match self.0 {
            Value::String(s) => visitor.visit_enum(s.into_deserializer()),
            Value::Bool(b) => visitor.visit_enum(b.to_string().into_deserializer()),
            other => Err(expected("one of the listed choices", &other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, OptionError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, OptionError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            other => Err(expected("null", &other)),
        }
    }

    forward_to_deserialize_any! {
        i128 u128 bytes byte_buf unit_struct tuple_struct identifier ignored_any
    }
}

struct Seq(std::vec::IntoIter<Value>);

impl<'de> de::SeqAccess<'de> for Seq {
    type Error = OptionError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, OptionError> {
        self.0
            .next()
            .map(|v| seed.deserialize(Lenient(v)))
            .transpose()
    }
}

struct Fields {
    iter: serde_json::map::IntoIter,
    pending: Option<(String, Value)>,
}

impl<'de> de::MapAccess<'de> for Fields {
    type Error = OptionError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, OptionError> {
        match self.iter.next() {
            Some((key, value)) => {
                let k = seed.deserialize(key.clone().into_deserializer())?;
                self.pending = Some((key, value));
                Ok(Some(k))
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, OptionError> {
        let (key, value) = self
            .pending
            .take()
            .ok_or_else(|| OptionError("value requested before its key".into()))?;
        seed.deserialize(Lenient(value))
            .map_err(|e| OptionError(format!("option '{key}': {e}")))
    }
}

/// A deserializer that only records the field list it is asked for.
struct Probe(Option<&'static [&'static str]>);

impl<'de> de::Deserializer<'de> for &mut Probe {
    type Error = OptionError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, OptionError> {
        Err(OptionError("options must be a struct".into()))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, OptionError> {
        self.0 = Some(fields);
        Err(OptionError("probe only".into()))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// Serde default for boolean options that default to true
/// (`#[serde(default = "ansible_protocol::options::default_true")]`).
pub fn default_true() -> bool {
    true
}

#[cfg(test)]
mod tests;
