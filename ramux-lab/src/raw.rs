//! The lab file as a TOML tree in which every key and value keeps its span (`toml::Spanned`).
//! The typed model is read from this tree by hand rather than by `#[derive(Deserialize)]`,
//! because serde stops at the first unknown key or wrong type, and `validate` must report every
//! problem of the file at once, each at its own line and column.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::diag::{At, Diags, LineIndex, Pos};

/// A TOML value whose children carry spans.
#[derive(Debug, Clone)]
pub enum Raw {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Array(Vec<Spanned<Raw>>),
    /// Keys in file order.
    Table(Vec<(Spanned<String>, Spanned<Raw>)>),
}

/// The entries of a table, in file order.
pub type Entries = [(Spanned<String>, Spanned<Raw>)];

/// A value and where it starts. Like `toml::Spanned`, whose protocol it speaks, but it also
/// accepts values that come without a span: the implicit table `switch` of a `[switch.sw0]`
/// header has none, and `toml::Spanned` refuses it.
#[derive(Debug, Clone)]
pub struct Spanned<T> {
    value: T,
    start: Option<usize>,
}

impl<T> Spanned<T> {
    pub fn get_ref(&self) -> &T {
        &self.value
    }
}

impl Spanned<String> {
    pub fn start(&self) -> usize {
        self.start.unwrap_or(0)
    }
}

impl Spanned<Raw> {
    /// Where the value starts; for a value without span, where its first child starts.
    pub fn start(&self) -> usize {
        if let Some(s) = self.start {
            return s;
        }
        match &self.value {
            Raw::Table(t) => t.first().map_or(0, |(k, _)| k.start()),
            Raw::Array(a) => a.first().map_or(0, |x| x.start()),
            _ => 0,
        }
    }
}

impl Raw {
    /// The TOML type name, for "expected a string, found an integer".
    pub fn kind(&self) -> &'static str {
        match self {
            Raw::Str(_) => "a string",
            Raw::Int(_) => "an integer",
            Raw::Float(_) => "a float",
            Raw::Bool(_) => "a boolean",
            Raw::Array(_) => "an array",
            Raw::Table(_) => "a table",
        }
    }
}

use serde_spanned::__unstable::{END_FIELD, NAME, START_FIELD, VALUE_FIELD};
const FIELDS: &[&str] = &[START_FIELD, END_FIELD, VALUE_FIELD];

/// Reads the rest of a spanned map once its first key (START_FIELD) was read.
fn spanned_rest<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    mut map: A,
) -> Result<Spanned<T>, A::Error> {
    let start: usize = map.next_value()?;
    let _ = map.next_key::<String>()?;
    let _end: usize = map.next_value()?;
    let _ = map.next_key::<String>()?;
    Ok(Spanned {
        value: map.next_value()?,
        start: Some(start),
    })
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Spanned<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Spanned {
            value: v.to_string(),
            start: None,
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let _ = map.next_key::<String>()?;
        spanned_rest(map)
    }
}

impl<'de> Deserialize<'de> for Spanned<String> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(NAME, FIELDS, KeyVisitor)
    }
}

struct RawVisitor;

impl RawVisitor {
    fn plain<E>(v: Raw) -> Result<Spanned<Raw>, E> {
        Ok(Spanned {
            value: v,
            start: None,
        })
    }
}

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Spanned<Raw>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a TOML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Self::plain(Raw::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Self::plain(Raw::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Self::plain(Raw::Int(i64::try_from(v).map_err(E::custom)?))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Self::plain(Raw::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Self::plain(Raw::Str(v.to_string()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = seq.next_element::<Spanned<Raw>>()? {
            v.push(x);
        }
        Self::plain(Raw::Array(v))
    }
    /// Either the span protocol (first key START_FIELD) or a table without span. Datetimes
    /// arrive as a one-key table: they stay a table and fail the type checks.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut v = Vec::new();
        while let Some(k) = map.next_key::<Spanned<String>>()? {
            if v.is_empty() && k.value == START_FIELD && k.start.is_none() {
                return spanned_rest::<A, Raw>(map);
            }
            v.push((k, map.next_value::<Spanned<Raw>>()?));
        }
        Self::plain(Raw::Table(v))
    }
}

/// The span-less inner value of the span protocol.
impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor).map(|s| s.value)
    }
}

impl<'de> Deserialize<'de> for Spanned<Raw> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(NAME, FIELDS, RawVisitor)
    }
}

/// Parse TOML text; a syntax error becomes one located diagnostic.
pub fn parse_toml(text: &str, ix: &LineIndex, diags: &mut Diags) -> Option<Raw> {
    match toml::from_str::<Raw>(text) {
        Ok(r) => Some(r),
        Err(e) => {
            let pos = ix.pos(e.span().map_or(0, |s| s.start));
            let msg = e.message().trim().replace('\n', " ");
            diags.error(
                pos,
                format!("TOML syntax: {msg}"),
                "see https://toml.io for the syntax",
            );
            None
        }
    }
}

/// One TOML table being read: each key is taken once; whatever is left is an unknown key.
pub struct Table<'a> {
    pub entries: Vec<(&'a Spanned<String>, &'a Spanned<Raw>)>,
    what: String,
    valid: &'static [&'static str],
}

impl<'a> Table<'a> {
    /// `what` names the table in messages (`[node.RT1]`); `valid` is every key it may hold.
    pub fn new(
        raw: &'a [(Spanned<String>, Spanned<Raw>)],
        what: impl Into<String>,
        valid: &'static [&'static str],
    ) -> Self {
        Table {
            entries: raw.iter().map(|(k, v)| (k, v)).collect(),
            what: what.into(),
            valid,
        }
    }

    /// Remove and return `key`'s value.
    pub fn take(&mut self, key: &str) -> Option<&'a Spanned<Raw>> {
        let i = self.entries.iter().position(|(k, _)| k.get_ref() == key)?;
        Some(self.entries.remove(i).1)
    }

    /// Report every key nobody took, with the list of valid ones.
    pub fn finish(self, cx: &mut Cx) {
        for (k, _) in self.entries {
            let pos = cx.pos(k.start());
            cx.diags.error(
                pos,
                format!("unknown key `{}` in {}", k.get_ref(), self.what),
                format!("valid keys: {}", self.valid.join(", ")),
            );
        }
    }
}

/// The reading context: the line index and the diagnostics.
pub struct Cx {
    pub ix: LineIndex,
    pub diags: Diags,
}

impl Cx {
    pub fn new(text: &str, file: &str) -> Self {
        Cx {
            ix: LineIndex::new(text),
            diags: Diags::new(file),
        }
    }

    pub fn pos(&self, offset: usize) -> Pos {
        self.ix.pos(offset)
    }

    pub fn at_of(&self, v: &Spanned<Raw>) -> Pos {
        self.pos(v.start())
    }

    pub fn wrong_type(&mut self, v: &Spanned<Raw>, key: &str, expected: &str, example: &str) {
        let pos = self.at_of(v);
        self.diags.error(
            pos,
            format!("`{key}` must be {expected}, found {}", v.get_ref().kind()),
            format!("write it like {key} = {example}"),
        );
    }

    pub fn string(&mut self, v: &Spanned<Raw>, key: &str, example: &str) -> Option<At<String>> {
        match v.get_ref() {
            Raw::Str(s) => Some(At::new(s.clone(), self.at_of(v))),
            _ => {
                self.wrong_type(v, key, "a string", example);
                None
            }
        }
    }

    pub fn boolean(&mut self, v: &Spanned<Raw>, key: &str) -> Option<At<bool>> {
        match v.get_ref() {
            Raw::Bool(b) => Some(At::new(*b, self.at_of(v))),
            _ => {
                self.wrong_type(v, key, "true or false", "true");
                None
            }
        }
    }

    /// An integer in `lo..=hi`.
    pub fn int(&mut self, v: &Spanned<Raw>, key: &str, lo: i64, hi: i64) -> Option<At<i64>> {
        match v.get_ref() {
            Raw::Int(n) if (lo..=hi).contains(n) => Some(At::new(*n, self.at_of(v))),
            Raw::Int(n) => {
                let pos = self.at_of(v);
                self.diags.error(
                    pos,
                    format!("`{key}` = {n} is out of range"),
                    format!("use a value from {lo} to {hi}"),
                );
                None
            }
            _ => {
                self.wrong_type(v, key, "an integer", &lo.max(1).to_string());
                None
            }
        }
    }

    pub fn array<'a>(
        &mut self,
        v: &'a Spanned<Raw>,
        key: &str,
        example: &str,
    ) -> Option<&'a [Spanned<Raw>]> {
        match v.get_ref() {
            Raw::Array(a) => Some(a),
            _ => {
                self.wrong_type(v, key, "an array", example);
                None
            }
        }
    }

    pub fn table<'a>(
        &mut self,
        v: &'a Spanned<Raw>,
        key: &str,
        example: &str,
    ) -> Option<&'a [(Spanned<String>, Spanned<Raw>)]> {
        match v.get_ref() {
            Raw::Table(t) => Some(t),
            _ => {
                self.wrong_type(v, key, "a table", example);
                None
            }
        }
    }

    /// A string parsed by `f`; its error becomes the message, `fix` the fix.
    pub fn parsed<T>(
        &mut self,
        v: &Spanned<Raw>,
        key: &str,
        example: &str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<At<T>> {
        let s = self.string(v, key, example)?;
        match f(&s.value) {
            Ok(x) => Some(At::new(x, s.pos)),
            Err(e) => {
                self.diags.error(
                    s.pos,
                    format!("`{key}`: {e}"),
                    format!("write it like {key} = {example}"),
                );
                None
            }
        }
    }
}
