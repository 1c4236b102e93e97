//! Typed readers for a node's attributes. A missing attribute gives `None` (callers supply the
//! ONNX default); one of the wrong type is an error naming the node, op and attribute.

use super::ImportError;
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::{AttributeProto, GraphProto, NodeProto, TensorProto};

/// A node's attributes.
pub(crate) struct Attrs<'a> {
    node: &'a NodeProto,
    /// The node's name, for messages.
    name: String,
}

impl<'a> Attrs<'a> {
    pub(crate) fn new(node: &'a NodeProto, name: String) -> Self {
        Attrs { node, name }
    }

    /// An error about this node.
    pub(crate) fn error(&self, message: String) -> ImportError {
        ImportError::Node { node: self.name.clone(), op: self.node.op_type.clone(), message }
    }

    /// The attribute, if present, after checking its declared type. Old exporters leave the
    /// type UNDEFINED; those are accepted and read from the expected field.
    fn get(&self, name: &str, want: AttributeType) -> Result<Option<&'a AttributeProto>, ImportError> {
        let Some(a) = self.node.attribute.iter().find(|a| a.name == name) else { return Ok(None) };
        match a.type_.enum_value() {
            Ok(t) if t == want || t == AttributeType::UNDEFINED => Ok(Some(a)),
            t => Err(self.error(format!("attribute '{name}' should be {want:?} but is {t:?}"))),
        }
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.node.attribute.iter().any(|a| a.name == name)
    }

    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, ImportError> {
        Ok(self.get(name, AttributeType::INT)?.map(|a| a.i))
    }

    pub(crate) fn int_or(&self, name: &str, default: i64) -> Result<i64, ImportError> {
        Ok(self.int(name)?.unwrap_or(default))
    }

    pub(crate) fn bool_or(&self, name: &str, default: bool) -> Result<bool, ImportError> {
        Ok(self.int(name)?.map_or(default, |v| v != 0))
    }

    /// A non-negative integer.
    pub(crate) fn usize_or(&self, name: &str, default: usize) -> Result<usize, ImportError> {
        match self.int(name)? {
            None => Ok(default),
            Some(v) => usize::try_from(v).map_err(|_| self.error(format!("attribute '{name}' is negative: {v}"))),
        }
    }

    pub(crate) fn float(&self, name: &str) -> Result<Option<f32>, ImportError> {
        Ok(self.get(name, AttributeType::FLOAT)?.map(|a| a.f))
    }

    pub(crate) fn float_or(&self, name: &str, default: f32) -> Result<f32, ImportError> {
        Ok(self.float(name)?.unwrap_or(default))
    }

    pub(crate) fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, ImportError> {
        Ok(self.get(name, AttributeType::INTS)?.map(|a| a.ints.clone()))
    }

    /// Non-negative integers (pads, strides, kernel extents, permutations).
    pub(crate) fn usizes(&self, name: &str) -> Result<Option<Vec<usize>>, ImportError> {
        self.ints(name)?
            .map(|v| {
                v.iter()
                    .map(|&x| usize::try_from(x))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| self.error(format!("attribute '{name}' {v:?} has a negative entry")))
            })
            .transpose()
    }

    pub(crate) fn floats(&self, name: &str) -> Result<Option<Vec<f32>>, ImportError> {
        Ok(self.get(name, AttributeType::FLOATS)?.map(|a| a.floats.clone()))
    }

    pub(crate) fn string(&self, name: &str) -> Result<Option<String>, ImportError> {
        self.get(name, AttributeType::STRING)?
            .map(|a| String::from_utf8(a.s.clone()).map_err(|_| self.error(format!("attribute '{name}' is not UTF-8"))))
            .transpose()
    }

    /// A list of strings (LSTM/GRU/RNN activations).
    pub(crate) fn string_list(&self, name: &str) -> Result<Option<Vec<String>>, ImportError> {
        self.get(name, AttributeType::STRINGS)?
            .map(|a| {
                a.strings
                    .iter()
                    .map(|s| {
                        String::from_utf8(s.clone()).map_err(|_| self.error(format!("attribute '{name}' is not UTF-8")))
                    })
                    .collect()
            })
            .transpose()
    }

    pub(crate) fn string_or(&self, name: &str, default: &str) -> Result<String, ImportError> {
        Ok(self.string(name)?.unwrap_or_else(|| default.to_string()))
    }

    pub(crate) fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>, ImportError> {
        let a = self.get(name, AttributeType::TENSOR)?;
        a.map(|a| a.t.as_ref().ok_or_else(|| self.error(format!("attribute '{name}' holds no tensor")))).transpose()
    }

    /// A required graph attribute (If branches, Loop/Scan bodies).
    pub(crate) fn graph(&self, name: &str) -> Result<&'a GraphProto, ImportError> {
        let a = self.get(name, AttributeType::GRAPH)?;
        a.and_then(|a| a.g.as_ref()).ok_or_else(|| self.error(format!("graph attribute '{name}' is missing")))
    }

    /// Every graph-valued attribute, for walks over nested graphs.
    pub(crate) fn graphs(node: &NodeProto) -> impl Iterator<Item = (&str, &GraphProto)> {
        node.attribute.iter().flat_map(|a| {
            let one = a.g.as_ref().map(|g| (a.name.as_str(), g));
            one.into_iter().chain(a.graphs.iter().map(|g| (a.name.as_str(), g)))
        })
    }

    /// A required attribute that is absent.
    pub(crate) fn missing(&self, name: &str) -> ImportError {
        self.error(format!("required attribute '{name}' is missing"))
    }
}
