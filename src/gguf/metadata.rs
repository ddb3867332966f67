//! The ordered key → value metadata of a GGUF file, with typed getters.

use super::error::{GgufError, Result};
use super::value::{Array, FromValue, GgufString, Value};
use std::collections::HashMap;

/// One metadata entry.
#[derive(Clone, Debug, PartialEq)]
pub struct MetaEntry {
    pub key: String,
    pub value: Value,
    /// Where the entry's key starts in the file it was read from (`None` if built in memory).
    pub offset: Option<u64>,
}

/// Metadata in file order, with lookup by key. Keys are unique.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    entries: Vec<MetaEntry>,
    index: HashMap<String, usize>,
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `key` (built in memory, so with no file offset). A duplicate key is an error.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Result<()> {
        let key = key.into();
        if self.index.contains_key(&key) {
            return Err(GgufError::write(
                format!("metadata key `{key}`"),
                "duplicate key",
            ));
        }
        self.insert_new(key, value.into(), None);
        Ok(())
    }

    /// Appends an entry whose key the caller has checked to be new.
    pub(crate) fn insert_new(&mut self, key: String, value: Value, offset: Option<u64>) {
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push(MetaEntry { key, value, offset });
    }

    pub(crate) fn entry(&self, key: &str) -> Option<&MetaEntry> {
        self.index.get(key).map(|&i| &self.entries[i])
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entry(key).map(|e| &e.value)
    }

    /// The entries in file order.
    pub fn entries(&self) -> &[MetaEntry] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value of `key` converted to `T`, or `None` if the key is absent. A present value of
    /// the wrong type (or out of `T`'s range) is an error naming the key.
    pub fn get_opt<'a, T: FromValue<'a>>(&'a self, key: &str) -> Result<Option<T>> {
        let Some(entry) = self.entry(key) else {
            return Ok(None);
        };
        T::from_value(&entry.value)
            .map(Some)
            .ok_or_else(|| GgufError::KeyType {
                key: key.to_string(),
                offset: entry.offset,
                expected: T::EXPECTED,
                found: describe(&entry.value),
            })
    }

    /// The value of `key` converted to `T`; a missing key or a type mismatch is an error.
    pub fn get_as<'a, T: FromValue<'a>>(&'a self, key: &str) -> Result<T> {
        self.get_opt(key)?.ok_or_else(|| GgufError::MissingKey {
            key: key.to_string(),
        })
    }

    /// `key` as a u32 (any integer type whose value fits).
    pub fn u32(&self, key: &str) -> Result<u32> {
        self.get_as(key)
    }

    /// `key` as a u64 (any integer type whose value fits).
    pub fn u64(&self, key: &str) -> Result<u64> {
        self.get_as(key)
    }

    /// `key` as an f32 (f32, or f64 narrowed).
    pub fn f32(&self, key: &str) -> Result<f32> {
        self.get_as(key)
    }

    /// `key` as a bool.
    pub fn bool(&self, key: &str) -> Result<bool> {
        self.get_as(key)
    }

    /// `key` as a UTF-8 string.
    pub fn string(&self, key: &str) -> Result<&str> {
        self.get_as(key)
    }

    /// `key` as raw string bytes (no UTF-8 check).
    pub fn string_bytes(&self, key: &str) -> Result<&GgufString> {
        self.get_as(key)
    }

    /// `key` as an array.
    pub fn array(&self, key: &str) -> Result<&Array> {
        self.get_as(key)
    }
}

/// The type and, for scalars, the value: `i32 -1`, `array of string`.
fn describe(value: &Value) -> String {
    match value {
        Value::Array(_) => value.type_description(),
        Value::String(s) if s.as_str().is_none() => "string with invalid UTF-8".to_string(),
        Value::String(s) => format!("string {s:?}"),
        v => format!("{} {}", v.type_description(), scalar(v)),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::F32(v) => v.to_string(),
        Value::F64(v) => v.to_string(),
        Value::Bool(v) => v.to_string(),
        v => v.as_i128().map(|i| i.to_string()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getters_convert_and_name_the_key() {
        let mut md = Metadata::new();
        md.push("a", 5u8).unwrap();
        md.push("b", -1i32).unwrap();
        md.push("c", "text").unwrap();
        assert!(md.push("a", 1u8).is_err());
        assert_eq!(md.u32("a").unwrap(), 5);
        assert_eq!(md.u64("a").unwrap(), 5);
        let err = md.u32("b").unwrap_err().to_string();
        assert!(
            err.contains("`b`") && err.contains("u32") && err.contains("-1"),
            "{err}"
        );
        let err = md.bool("c").unwrap_err().to_string();
        assert!(err.contains("`c`") && err.contains("\"text\""), "{err}");
        assert!(md
            .u32("zz")
            .unwrap_err()
            .to_string()
            .contains("`zz` is missing"));
        assert_eq!(md.get_opt::<u32>("zz").unwrap(), None);
        assert_eq!(md.string("c").unwrap(), "text");
        let keys: Vec<_> = md.entries().iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
    }
}
