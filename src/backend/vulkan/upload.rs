//! Copying bytes from the CPU into device buffers: straight into the mapping where the CPU can see
//! the buffer (unified memory, resizable BAR, lavapipe), else through a host-visible staging
//! buffer and a copy on the transfer queue.

use super::commands::{Commands, QueueKind};
use super::device::Gpu;
use super::error::VulkanError;
use super::memory::{Buffer, Place};
use std::sync::Arc;

/// Bytes staged per copy.
const STAGING_BYTES: u64 = 64 << 20;

pub struct Uploader {
    gpu: Arc<Gpu>,
    /// Made on the first upload that needs them.
    staging: Option<(Buffer, Commands)>,
}

impl Uploader {
    pub fn new(gpu: &Arc<Gpu>) -> Uploader {
        Uploader {
            gpu: gpu.clone(),
            staging: None,
        }
    }

    /// Copies `data` to the start of `dst` and waits until it is there.
    pub fn upload(&mut self, dst: &mut Buffer, data: &[u8]) -> Result<(), VulkanError> {
        assert!(
            data.len() as u64 <= dst.size,
            "upload larger than its buffer"
        );
        if let Some(map) = dst.mapped_mut() {
            map[..data.len()].copy_from_slice(data);
            return Ok(());
        }
        if self.staging.is_none() {
            let staging = Buffer::new(&self.gpu, STAGING_BYTES, Place::Upload, "upload staging")?;
            let cmds = Commands::new(&self.gpu, QueueKind::Transfer)?;
            self.staging = Some((staging, cmds));
        }
        let (staging, cmds) = self.staging.as_mut().expect("made above");
        for (i, piece) in data.chunks(STAGING_BYTES as usize).enumerate() {
            staging.write(0, piece)?;
            cmds.begin()?;
            let bytes = (piece.len() as u64).next_multiple_of(4);
            cmds.copy(staging, 0, dst, i as u64 * STAGING_BYTES, bytes);
            cmds.run()?;
        }
        Ok(())
    }
}
