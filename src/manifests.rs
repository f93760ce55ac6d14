//! Reading Kubernetes manifests, YAML or JSON, as the API would see them (JSON objects), with the
//! line and column of every mapping key and list item, so a finding can point at the annotation
//! it is about. Multi-document streams are read document by document: a document that does not
//! parse is reported with its position and the ones after it are still read when the parser can
//! resume (it cannot after a syntax error). `List` kinds are expanded by the caller
//! ([`Document::objects`]).
//!
//! YAML is read with `serde-saphyr` (already in the dependency tree: kube reads kubeconfigs
//! with it, so this costs no new crate): YAML 1.2, no `unsafe`, panic-free on malformed input,
//! input budgets against alias bombs, positioned errors, and `Spanned` values that carry the
//! line and column of each node. JSON is YAML 1.2, so one reader serves both.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::{MessageFormatter, Spanned, UserMessageFormatter};
use thiserror::Error;

/// A 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl Position {
    fn of(location: &serde_saphyr::Location) -> Option<Self> {
        (location.line() > 0).then(|| Position {
            line: location.line(),
            column: location.column().max(1),
        })
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A document that could not be read.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{message}")]
pub struct ParseError {
    /// 1-based index of the document in the stream.
    pub document: usize,
    pub message: String,
    pub at: Option<Position>,
}

/// One document of a stream.
#[derive(Clone, Debug)]
pub struct Document {
    /// 1-based index in the stream (documents that are empty or `null` are not counted).
    pub index: usize,
    pub value: Value,
    /// Where the document's content starts.
    pub at: Option<Position>,
    /// JSON pointer of each mapping entry and list item → where its key (or item) starts.
    positions: BTreeMap<String, Position>,
}

impl Document {
    /// Where the node at `pointer` (JSON pointer into [`Document::value`]) starts: for a mapping
    /// entry, its key.
    pub fn position(&self, pointer: &str) -> Option<Position> {
        if pointer.is_empty() {
            return self.at;
        }
        self.positions.get(pointer).copied()
    }

    /// Where the node at `pointer` starts, or the nearest enclosing node that has a position.
    pub fn nearest_position(&self, pointer: &str) -> Option<Position> {
        let mut p = pointer;
        loop {
            if let Some(at) = self.position(p) {
                return Some(at);
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return self.at,
            }
        }
    }

    /// The Kubernetes objects of the document: the items of a list kind (`List`,
    /// `ConfigMapList`, … with an `items` array), otherwise the document itself.
    pub fn objects(&self) -> Vec<(Value, String)> {
        let kind = self.value.get("kind").and_then(Value::as_str).unwrap_or_default();
        match self.value.get("items").and_then(Value::as_array) {
            Some(items) if kind.ends_with("List") => items
                .iter()
                .enumerate()
                .map(|(i, item)| (item.clone(), format!("/items/{i}")))
                .collect(),
            _ => vec![(self.value.clone(), String::new())],
        }
    }
}

/// Escapes a key for a JSON pointer (RFC 6901).
pub fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Every document of a YAML or JSON stream that could be read, and an error for each one that
/// could not. Never panics, whatever the input.
pub fn parse(text: &[u8]) -> (Vec<Document>, Vec<ParseError>) {
    let mut documents = Vec::new();
    let mut errors = Vec::new();
    let mut reader = std::io::Cursor::new(text);
    let iter = serde_saphyr::read_with_options::<_, Node>(&mut reader, serde_saphyr::Options::default());
    for (i, item) in iter.enumerate() {
        let index = i + 1;
        let converted = item
            .map_err(|e| ParseError {
                document: index,
                message: UserMessageFormatter.format_message(&e).into_owned(),
                at: e.location().as_ref().and_then(Position::of),
            })
            .and_then(|node| {
                let mut positions = BTreeMap::new();
                let at = node.at;
                let value = node.into_json("", &mut positions, index)?;
                Ok(Document {
                    index,
                    value,
                    at,
                    positions,
                })
            });
        match converted {
            Ok(document) => documents.push(document),
            Err(error) => errors.push(error),
        }
    }
    (documents, errors)
}

/// A YAML node and where it starts.
struct Node {
    at: Option<Position>,
    value: NodeValue,
}

enum NodeValue {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The node as JSON, recording the position of every entry and item below `pointer`.
    fn into_json(
        self,
        pointer: &str,
        positions: &mut BTreeMap<String, Position>,
        document: usize,
    ) -> Result<Value, ParseError> {
        Ok(match self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(b),
            NodeValue::I64(n) => Value::Number(n.into()),
            NodeValue::U64(n) => Value::Number(n.into()),
            // JSON has no NaN or infinities; the API server would refuse them too.
            NodeValue::F64(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            NodeValue::Str(s) => Value::String(s),
            NodeValue::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    let child = format!("{pointer}/{i}");
                    if let Some(at) = item.at {
                        positions.insert(child.clone(), at);
                    }
                    out.push(item.into_json(&child, positions, document)?);
                }
                Value::Array(out)
            }
            NodeValue::Map(entries) => {
                let mut out = Map::new();
                for (key, value) in entries {
                    let name = match key.value {
                        NodeValue::Str(s) => s,
                        NodeValue::Bool(b) => b.to_string(),
                        NodeValue::I64(n) => n.to_string(),
                        NodeValue::U64(n) => n.to_string(),
                        NodeValue::F64(f) => f.to_string(),
                        NodeValue::Null => "null".to_string(),
                        NodeValue::Seq(_) | NodeValue::Map(_) => {
                            return Err(ParseError {
                                document,
                                message: "a mapping key must be a scalar (a list or map key has no JSON form)".into(),
                                at: key.at,
                            });
                        }
                    };
                    let child = format!("{pointer}/{}", escape(&name));
                    if let Some(at) = key.at {
                        positions.insert(child.clone(), at);
                    }
                    let value = value.into_json(&child, positions, document)?;
                    out.insert(name, value);
                }
                Value::Object(out)
            }
        })
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<NodeValue>::deserialize(deserializer)?;
        Ok(Node {
            at: Position::of(&spanned.referenced),
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for NodeValue {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = NodeValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<NodeValue, E> {
        Ok(NodeValue::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<NodeValue, E> {
        Ok(NodeValue::I64(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<NodeValue, E> {
        Ok(NodeValue::U64(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<NodeValue, E> {
        i64::try_from(v)
            .map(NodeValue::I64)
            .or_else(|_| u64::try_from(v).map(NodeValue::U64))
            .map_err(|_| E::custom("integer out of range"))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<NodeValue, E> {
        u64::try_from(v)
            .map(NodeValue::U64)
            .map_err(|_| E::custom("integer out of range"))
    }

    fn visit_f64<E>(self, v: f64) -> Result<NodeValue, E> {
        Ok(NodeValue::F64(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<NodeValue, E> {
        Ok(NodeValue::Str(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<NodeValue, E> {
        Ok(NodeValue::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<NodeValue, E> {
        String::from_utf8(v.to_vec())
            .map(NodeValue::Str)
            .map_err(|_| E::custom("binary data that is not UTF-8"))
    }

    fn visit_unit<E>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }

    fn visit_none<E>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<NodeValue, D::Error> {
        NodeValue::deserialize(deserializer)
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<NodeValue, D::Error> {
        NodeValue::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(NodeValue::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(NodeValue::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(line: u64, column: u64) -> Option<Position> {
        Some(Position { line, column })
    }

    #[test]
    fn values_and_positions() {
        let text = "\
# a comment
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  annotations:
    reloader.stakater.com/auto: \"true\"
    plain: true
    port: 8080
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: app
          ports: [{containerPort: 80}]
";
        let (docs, errors) = parse(text.as_bytes());
        assert!(errors.is_empty(), "{errors:?}");
        let doc = &docs[0];
        assert_eq!(doc.index, 1);
        assert_eq!(doc.value["metadata"]["annotations"]["plain"], json!(true));
        assert_eq!(doc.value["metadata"]["annotations"]["port"], json!(8080));
        assert_eq!(
            doc.value["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
            json!(80)
        );
        assert_eq!(
            doc.position("/metadata/annotations/reloader.stakater.com~1auto"),
            at(7, 5)
        );
        assert_eq!(doc.position("/spec/template/spec/containers/0"), at(15, 11));
        assert_eq!(
            doc.nearest_position("/metadata/annotations/absent~1key"),
            at(6, 3),
            "the enclosing map"
        );
        assert_eq!(doc.at, at(2, 1));
    }

    #[test]
    fn streams_lists_and_json() {
        let text = "---\n# only a comment\n---\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\n{\"kind\": \"List\", \"items\": [{\"kind\": \"Secret\"}, {\"kind\": \"ConfigMap\"}]}\n";
        let (docs, errors) = parse(text.as_bytes());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].index, 1);
        assert_eq!(docs[1].index, 2);
        let objects = docs[1].objects();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[1].1, "/items/1");
        assert_eq!(docs[1].position("/items/1"), at(8, 48));
        assert_eq!(docs[0].objects()[0].1, "");
    }

    #[test]
    fn anchors_and_merges_resolve() {
        let text = "common: &c {a: \"1\"}\nkind: X\nmetadata:\n  annotations:\n    <<: *c\n    b: \"2\"\n";
        let (docs, errors) = parse(text.as_bytes());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(docs[0].value["metadata"]["annotations"], json!({"a": "1", "b": "2"}));
    }

    #[test]
    fn broken_documents_are_positioned_and_others_still_read() {
        // A duplicate key is a document error: the next document is still read.
        let text = "kind: A\nkind: B\n---\nkind: C\n";
        let (docs, errors) = parse(text.as_bytes());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].document, 1);
        assert!(errors[0].at.is_some(), "{errors:?}");
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].index, 2);
        assert_eq!(docs[0].value["kind"], json!("C"));

        // A syntax error ends the stream; what came before it is kept.
        let text = "kind: A\n---\nkind: [unclosed\n---\nkind: C\n";
        let (docs, errors) = parse(text.as_bytes());
        assert_eq!(docs.len(), 1);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].document, 2);
        let at = errors[0].at.expect("positioned");
        assert!(at.line >= 3, "{at:?}");
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            &b"\xff\xfe\x00"[..],
            b"\x00\x01\x02",
            b"{",
            b"- [",
            b"a: *missing",
            b"? [a]\n: b\n",
            b"\t\tkey: value",
            b"%YAML 9.9\n---\na: 1",
            b"a: !!binary AAAA",
            b"a: 1e999",
            b"a: 99999999999999999999999999999999999999999",
        ] {
            let _ = parse(text);
        }
        let (_, errors) = parse(b"? [a]\n: b\n");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("mapping key"), "{errors:?}");
    }
}
