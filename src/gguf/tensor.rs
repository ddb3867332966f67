//! Tensor descriptions: [`TensorInfo`] as read from a file, [`TensorSpec`] as given to the writer,
//! and the shape rules both obey.

use crate::quant::GgmlType;

/// ggml tensors have at most 4 dimensions (`GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;

/// A tensor as described in a file's header. The shape `ne` is ggml's: the row length first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub(crate) name: String,
    pub(crate) ty: GgmlType,
    pub(crate) ne: Vec<u64>,
    /// Offset of the data relative to the start of the data section.
    pub(crate) offset: u64,
    pub(crate) nbytes: u64,
    /// Where this tensor's info record starts in the header.
    pub(crate) info_offset: u64,
}

impl TensorInfo {
    /// The tensor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The ggml type.
    pub fn ty(&self) -> GgmlType {
        self.ty
    }

    /// The shape, row length first (`ne[0]` values per row).
    pub fn ne(&self) -> &[u64] {
        &self.ne
    }

    /// Offset of the data relative to the start of the data section.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Size of the data in bytes.
    pub fn nbytes(&self) -> u64 {
        self.nbytes
    }

    /// Number of values (the product of `ne`).
    pub fn n_elements(&self) -> u64 {
        // Checked when the file was read: the product fits in u64.
        self.ne.iter().product()
    }

    /// Where this tensor's info record starts in the file header.
    pub fn info_offset(&self) -> u64 {
        self.info_offset
    }

    /// The writer's description of this tensor (to re-write it).
    pub fn spec(&self) -> TensorSpec {
        TensorSpec {
            name: self.name.clone(),
            ty: self.ty,
            ne: self.ne.clone(),
        }
    }
}

/// A tensor declared to the writer before its data is streamed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub ty: GgmlType,
    /// The shape, row length first.
    pub ne: Vec<u64>,
}

impl TensorSpec {
    /// A spec for `name` of type `ty` with shape `ne` (row length first).
    pub fn new(name: impl Into<String>, ty: GgmlType, ne: &[u64]) -> Self {
        TensorSpec {
            name: name.into(),
            ty,
            ne: ne.to_vec(),
        }
    }

    /// The data size in bytes, or why the shape does not fit the type.
    pub fn nbytes(&self) -> Result<u64, String> {
        tensor_nbytes(self.ty, &self.ne)
    }
}

/// The byte size of a tensor of type `ty` and shape `ne`, or why the shape is invalid: more than
/// [`MAX_DIMS`] dimensions, a dimension above i64::MAX (ggml stores them signed), an element
/// count that overflows, or a row length that is not a whole number of blocks.
pub fn tensor_nbytes(ty: GgmlType, ne: &[u64]) -> Result<u64, String> {
    if ne.len() > MAX_DIMS {
        return Err(format!("{} dimensions (at most {MAX_DIMS})", ne.len()));
    }
    let mut count: u64 = 1;
    for (i, &n) in ne.iter().enumerate() {
        if n > i64::MAX as u64 {
            return Err(format!("ne[{i}] = {n} exceeds i64::MAX"));
        }
        count = count
            .checked_mul(n)
            .filter(|&c| c <= i64::MAX as u64)
            .ok_or_else(|| format!("element count of shape {ne:?} overflows"))?;
    }
    let block = ty.block_values() as u64;
    if let Some(&row) = ne.first() {
        if row % block != 0 {
            return Err(format!(
                "row length ne[0] = {row} is not a multiple of the {ty} block size {block}"
            ));
        }
    }
    ty.bytes_for(count)
        .ok_or_else(|| format!("{count} values are not a whole number of {ty} blocks"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nbytes_follows_block_geometry() {
        assert_eq!(tensor_nbytes(GgmlType::F32, &[3, 2]), Ok(24));
        assert_eq!(tensor_nbytes(GgmlType::Q4_0, &[64, 3]), Ok(6 * 18));
        assert_eq!(tensor_nbytes(GgmlType::Q6_K, &[256]), Ok(210));
        assert_eq!(tensor_nbytes(GgmlType::F16, &[]), Ok(2));
        assert!(tensor_nbytes(GgmlType::Q4_0, &[16, 2]).is_err());
        assert!(tensor_nbytes(GgmlType::F32, &[1, 1, 1, 1, 1]).is_err());
        assert!(tensor_nbytes(GgmlType::F32, &[1 << 32, 1 << 32]).is_err());
        assert!(tensor_nbytes(GgmlType::F32, &[u64::MAX]).is_err());
        // Fits in i64 as a count, but not in bytes.
        assert!(tensor_nbytes(GgmlType::F32, &[1 << 62]).is_err());
    }
}
