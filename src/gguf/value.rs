//! Metadata values: the 13 GGUF value types, scalars, strings and (possibly nested) arrays.
//!
//! Arrays are stored typed (`Vec<f32>`, `Vec<GgufString>`, ...) rather than as a list of
//! [`Value`]s, so that a 32000-entry score table costs 4 bytes a score, as on disk.

use std::fmt;

/// A GGUF metadata value type (`enum gguf_type`), with its on-disk id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    /// Every type, in id order.
    pub const ALL: [ValueType; 13] = [
        ValueType::U8,
        ValueType::I8,
        ValueType::U16,
        ValueType::I16,
        ValueType::U32,
        ValueType::I32,
        ValueType::F32,
        ValueType::Bool,
        ValueType::String,
        ValueType::Array,
        ValueType::U64,
        ValueType::I64,
        ValueType::F64,
    ];

    /// The type with this on-disk id.
    pub fn from_id(id: u32) -> Option<ValueType> {
        ValueType::ALL.get(id as usize).copied()
    }

    /// The on-disk id.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// A short lower-case name (`u32`, `string`, `array`).
    pub fn name(self) -> &'static str {
        match self {
            ValueType::U8 => "u8",
            ValueType::I8 => "i8",
            ValueType::U16 => "u16",
            ValueType::I16 => "i16",
            ValueType::U32 => "u32",
            ValueType::I32 => "i32",
            ValueType::F32 => "f32",
            ValueType::Bool => "bool",
            ValueType::String => "string",
            ValueType::Array => "array",
            ValueType::U64 => "u64",
            ValueType::I64 => "i64",
            ValueType::F64 => "f64",
        }
    }

    /// The on-disk size of one value of a fixed-size type; `None` for strings and arrays.
    pub fn fixed_size(self) -> Option<usize> {
        match self {
            ValueType::U8 | ValueType::I8 | ValueType::Bool => Some(1),
            ValueType::U16 | ValueType::I16 => Some(2),
            ValueType::U32 | ValueType::I32 | ValueType::F32 => Some(4),
            ValueType::U64 | ValueType::I64 | ValueType::F64 => Some(8),
            ValueType::String | ValueType::Array => None,
        }
    }

    /// The fewest bytes one value of this type takes on disk: a string is at least its u64
    /// length, an array at least its u32 element type and u64 length. Used to bound counts
    /// read from disk by the bytes that are left.
    pub fn min_size(self) -> usize {
        match self {
            ValueType::String => 8,
            ValueType::Array => 12,
            fixed => fixed.fixed_size().unwrap_or(1),
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A GGUF string: a length-prefixed byte string. GGUF says UTF-8, but the bytes are kept as
/// they are, so that a file with an odd token still loads and rewrites unchanged; callers that
/// need text use [`GgufString::as_str`].
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct GgufString(Vec<u8>);

impl GgufString {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The raw bytes, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The string, if it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The string with invalid UTF-8 replaced by U+FFFD, for display.
    pub fn to_string_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }
}

impl From<Vec<u8>> for GgufString {
    fn from(bytes: Vec<u8>) -> Self {
        GgufString(bytes)
    }
}

impl From<&[u8]> for GgufString {
    fn from(bytes: &[u8]) -> Self {
        GgufString(bytes.to_vec())
    }
}

impl From<String> for GgufString {
    fn from(s: String) -> Self {
        GgufString(s.into_bytes())
    }
}

impl From<&str> for GgufString {
    fn from(s: &str) -> Self {
        GgufString(s.as_bytes().to_vec())
    }
}

impl fmt::Debug for GgufString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string_lossy(), f)
    }
}

impl fmt::Display for GgufString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

/// One metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(GgufString),
    Array(Array),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// A homogeneous array. An array of arrays holds inner arrays that may each have their own
/// element type.
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<GgufString>),
    Array(Vec<Array>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl Value {
    /// This value's type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// Any integer value, widened; `None` for other types.
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v.into(),
            Value::I8(v) => v.into(),
            Value::U16(v) => v.into(),
            Value::I16(v) => v.into(),
            Value::U32(v) => v.into(),
            Value::I32(v) => v.into(),
            Value::U64(v) => v.into(),
            Value::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// A float value widened to f64; `None` for other types.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => None,
        }
    }

    /// A short description of the type for error messages: `u32`, `array of string`.
    pub fn type_description(&self) -> String {
        match self {
            Value::Array(a) => format!("array of {}", a.elem_type()),
            v => v.value_type().name().to_string(),
        }
    }
}

macro_rules! array_accessors {
    ($($variant:ident, $getter:ident, $elem:ty;)*) => {
        impl Array {
            /// The element type.
            pub fn elem_type(&self) -> ValueType {
                match self { $(Array::$variant(_) => ValueType::$variant,)* }
            }

            /// The number of elements.
            pub fn len(&self) -> usize {
                match self { $(Array::$variant(v) => v.len(),)* }
            }

            /// Whether the array has no elements.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            $(
                /// The elements, if the array has this element type.
                pub fn $getter(&self) -> Option<&[$elem]> {
                    match self { Array::$variant(v) => Some(v), _ => None }
                }
            )*
        }

        $(
            impl From<Vec<$elem>> for Array {
                fn from(v: Vec<$elem>) -> Self {
                    Array::$variant(v)
                }
            }
        )*
    };
}

array_accessors! {
    U8, as_u8, u8;
    I8, as_i8, i8;
    U16, as_u16, u16;
    I16, as_i16, i16;
    U32, as_u32, u32;
    I32, as_i32, i32;
    F32, as_f32, f32;
    Bool, as_bool, bool;
    String, as_strings, GgufString;
    Array, as_arrays, Array;
    U64, as_u64, u64;
    I64, as_i64, i64;
    F64, as_f64, f64;
}

macro_rules! value_from {
    ($($t:ty => $variant:ident;)*) => {
        $(
            impl From<$t> for Value {
                fn from(v: $t) -> Self {
                    Value::$variant(v.into())
                }
            }
        )*
    };
}

value_from! {
    u8 => U8;
    i8 => I8;
    u16 => U16;
    i16 => I16;
    u32 => U32;
    i32 => I32;
    f32 => F32;
    bool => Bool;
    u64 => U64;
    i64 => I64;
    f64 => F64;
    GgufString => String;
    String => String;
    &str => String;
    Array => Array;
}

/// A Rust type that a metadata value converts to, for [`crate::gguf::Metadata`]'s typed getters.
/// Integers convert from any integer type whose value fits; floats from f32 or f64.
pub trait FromValue<'a>: Sized {
    /// What the getter asked for, for the error message (`u32`, `string`).
    const EXPECTED: &'static str;
    /// The converted value, or `None` on a type mismatch or a value out of range.
    fn from_value(value: &'a Value) -> Option<Self>;
}

macro_rules! from_value_int {
    ($($t:ty),*) => {
        $(
            impl FromValue<'_> for $t {
                const EXPECTED: &'static str = stringify!($t);
                fn from_value(value: &Value) -> Option<Self> {
                    value.as_i128().and_then(|v| <$t>::try_from(v).ok())
                }
            }
        )*
    };
}

from_value_int!(u8, u16, u32, u64, usize, i32, i64);

impl FromValue<'_> for f32 {
    const EXPECTED: &'static str = "f32";
    fn from_value(value: &Value) -> Option<Self> {
        // An f64 is narrowed: a caller asking for f32 wants f32 precision.
        value.as_f64().map(|v| v as f32)
    }
}

impl FromValue<'_> for f64 {
    const EXPECTED: &'static str = "f64";
    fn from_value(value: &Value) -> Option<Self> {
        value.as_f64()
    }
}

impl FromValue<'_> for bool {
    const EXPECTED: &'static str = "bool";
    fn from_value(value: &Value) -> Option<Self> {
        match *value {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }
}

impl<'a> FromValue<'a> for &'a str {
    const EXPECTED: &'static str = "UTF-8 string";
    fn from_value(value: &'a Value) -> Option<Self> {
        match value {
            Value::String(s) => s.as_str(),
            _ => None,
        }
    }
}

impl<'a> FromValue<'a> for &'a GgufString {
    const EXPECTED: &'static str = "string";
    fn from_value(value: &'a Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

impl<'a> FromValue<'a> for &'a Array {
    const EXPECTED: &'static str = "array";
    fn from_value(value: &'a Value) -> Option<Self> {
        match value {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_ids_round_trip() {
        for (i, t) in ValueType::ALL.iter().enumerate() {
            assert_eq!(t.id() as usize, i);
            assert_eq!(ValueType::from_id(t.id()), Some(*t));
        }
        assert_eq!(ValueType::from_id(13), None);
    }

    #[test]
    fn integers_convert_when_they_fit() {
        assert_eq!(u32::from_value(&Value::U64(7)), Some(7));
        assert_eq!(u32::from_value(&Value::U64(1 << 32)), None);
        assert_eq!(u32::from_value(&Value::I32(-1)), None);
        assert_eq!(i64::from_value(&Value::I8(-3)), Some(-3));
        assert_eq!(u64::from_value(&Value::F32(1.0)), None);
        assert_eq!(f32::from_value(&Value::F64(0.5)), Some(0.5));
        assert_eq!(<&str>::from_value(&Value::from("x")), Some("x"));
        assert_eq!(<&str>::from_value(&Value::String(vec![0xff].into())), None);
    }
}
