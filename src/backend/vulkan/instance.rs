//! The Vulkan loader and instance, and what each physical device offers (`tandem devices`).

use super::error::{check, version_string, VulkanError};
use ash::vk;
use std::ffi::CStr;

/// The loaded libvulkan and an instance of at least Vulkan 1.1.
pub struct Instance {
    /// Keeps libvulkan loaded while the instance lives.
    _entry: ash::Entry,
    pub(crate) raw: ash::Instance,
    /// The instance's API version (at most 1.3).
    pub(crate) api: u32,
}

/// What kind of device Vulkan says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    Discrete,
    Integrated,
    Virtual,
    /// A CPU implementation, such as Mesa's lavapipe.
    Cpu,
    Other,
}

impl DeviceKind {
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Discrete => "discrete",
            DeviceKind::Integrated => "integrated",
            DeviceKind::Virtual => "virtual",
            DeviceKind::Cpu => "cpu",
            DeviceKind::Other => "other",
        }
    }
}

/// One device-local memory heap.
#[derive(Clone, Debug)]
pub struct Heap {
    pub size: u64,
    /// What the driver says this process may still allocate (VK_EXT_memory_budget), if it says.
    pub budget: Option<u64>,
}

/// Optional features tandem's kernels can use. None is required today: the kernels read weights as
/// 32-bit words and fall back to shared-memory reductions without subgroup arithmetic.
#[derive(Clone, Copy, Debug, Default)]
pub struct Features {
    pub storage_8bit: bool,
    pub storage_16bit: bool,
    pub float16: bool,
    pub int8: bool,
    pub int_dot_product: bool,
    /// Subgroup add in compute shaders.
    pub subgroup_arithmetic: bool,
}

/// A physical device as `tandem devices` lists it.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub index: usize,
    pub(crate) handle: vk::PhysicalDevice,
    pub name: String,
    pub kind: DeviceKind,
    /// The device's Vulkan version, capped by the instance's.
    pub api_version: u32,
    /// The driver's name and version text (VK_KHR_driver_properties), or its raw version number.
    pub driver: String,
    pub local_heaps: Vec<Heap>,
    pub subgroup_size: u32,
    pub max_storage_buffer_range: u64,
    pub max_allocation_size: u64,
    pub max_workgroup_count: [u32; 3],
    pub max_workgroup_invocations: u32,
    pub max_shared_memory: u32,
    pub features: Features,
    /// A queue family with compute, and one with transfer only (a DMA engine), if any.
    pub compute_family: Option<u32>,
    pub transfer_family: Option<u32>,
}

impl DeviceInfo {
    /// Device-local memory in all.
    pub fn local_bytes(&self) -> u64 {
        self.local_heaps.iter().map(|h| h.size).sum()
    }

    /// What this process may allocate: the budget where the driver reports one, else the heaps'
    /// size.
    pub fn available_bytes(&self) -> u64 {
        self.local_heaps
            .iter()
            .map(|h| h.budget.unwrap_or(h.size))
            .sum()
    }

    /// Why tandem's kernels cannot run here, if they cannot.
    pub fn unsuitable(&self) -> Option<String> {
        if self.api_version < vk::API_VERSION_1_1 {
            return Some(format!(
                "it supports Vulkan {}; tandem's shaders need 1.1",
                version_string(self.api_version)
            ));
        }
        if self.compute_family.is_none() {
            return Some("it has no compute queue".into());
        }
        None
    }
}

impl Instance {
    /// Opens libvulkan and creates an instance of the newest version it offers (up to 1.3).
    pub fn new() -> Result<Instance, VulkanError> {
        Self::with_max_api(vk::API_VERSION_1_3)
    }

    /// [`Instance::new`] asking for at most Vulkan `max_api`: below 1.1, every device looks like
    /// the Vulkan 1.0 device it then is to tandem, and is refused (how the tests check that an
    /// old device falls back to the CPU).
    pub fn with_max_api(max_api: u32) -> Result<Instance, VulkanError> {
        // SAFETY: this opens the system's Vulkan loader, whose initialisers are sound to run.
        let entry =
            unsafe { ash::Entry::load() }.map_err(|e| VulkanError::NoLoader(e.to_string()))?;
        // SAFETY: a plain query on a loaded entry.
        let version = unsafe { entry.try_enumerate_instance_version() }
            .map_err(check("vkEnumerateInstanceVersion"))?
            .unwrap_or(vk::API_VERSION_1_0);
        if version < vk::API_VERSION_1_1 {
            return Err(VulkanError::OldLoader(version_string(version)));
        }
        let api = version.min(max_api);
        let app = vk::ApplicationInfo::default()
            .application_name(c"tandem")
            .engine_name(c"tandem")
            .api_version(api);
        let info = vk::InstanceCreateInfo::default().application_info(&app);
        // SAFETY: `info` and what it points to live across the call.
        let raw = unsafe { entry.create_instance(&info, None) }.map_err(|e| match e {
            // The loader found no driver at all (VK_ICD_FILENAMES pointing at nothing, say).
            vk::Result::ERROR_INCOMPATIBLE_DRIVER => VulkanError::NoDevice,
            e => check("vkCreateInstance")(e),
        })?;
        Ok(Instance {
            _entry: entry,
            raw,
            api,
        })
    }

    /// Every physical device, in the loader's order.
    pub fn devices(&self) -> Result<Vec<DeviceInfo>, VulkanError> {
        // SAFETY: a query on a live instance.
        let handles = unsafe { self.raw.enumerate_physical_devices() }
            .map_err(check("vkEnumeratePhysicalDevices"))?;
        Ok(handles
            .into_iter()
            .enumerate()
            .map(|(index, handle)| self.describe(index, handle))
            .collect())
    }

    fn describe(&self, index: usize, pd: vk::PhysicalDevice) -> DeviceInfo {
        let inst = &self.raw;
        // SAFETY (this function): queries on a live instance and one of its physical devices,
        // with every chained structure alive across the call and known to the device (chained
        // only where its version or extension list says so).
        let props = unsafe { inst.get_physical_device_properties(pd) };
        let api = props.api_version.min(self.api);
        let extensions: Vec<String> = unsafe { inst.enumerate_device_extension_properties(pd) }
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e.extension_name_as_c_str().ok())
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        let has = |name: &str| extensions.iter().any(|e| e == name);
        let v12 = api >= vk::API_VERSION_1_2;
        if self.api < vk::API_VERSION_1_1 {
            // The *2 queries below are Vulkan 1.1: a 1.0 instance reports only the basics.
            return self.describe_basic(index, pd, props, api);
        }

        let mut subgroup = vk::PhysicalDeviceSubgroupProperties::default();
        let mut driver = vk::PhysicalDeviceDriverProperties::default();
        let has_driver = v12 || has("VK_KHR_driver_properties");
        let mut props2 = vk::PhysicalDeviceProperties2::default().push_next(&mut subgroup);
        if has_driver {
            props2 = props2.push_next(&mut driver);
        }
        let mut maint3 = vk::PhysicalDeviceMaintenance3Properties::default();
        props2 = props2.push_next(&mut maint3);
        unsafe { inst.get_physical_device_properties2(pd, &mut props2) };
        let limits = props.limits;

        let mut s16 = vk::PhysicalDevice16BitStorageFeatures::default();
        let mut s8 = vk::PhysicalDevice8BitStorageFeatures::default();
        let mut f16i8 = vk::PhysicalDeviceShaderFloat16Int8Features::default();
        let mut dot = vk::PhysicalDeviceShaderIntegerDotProductFeatures::default();
        let mut feats2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut s16);
        let (has_s8, has_f16i8) = (
            v12 || has("VK_KHR_8bit_storage"),
            v12 || has("VK_KHR_shader_float16_int8"),
        );
        let has_dot = api >= vk::API_VERSION_1_3 || has("VK_KHR_shader_integer_dot_product");
        if has_s8 {
            feats2 = feats2.push_next(&mut s8);
        }
        if has_f16i8 {
            feats2 = feats2.push_next(&mut f16i8);
        }
        if has_dot {
            feats2 = feats2.push_next(&mut dot);
        }
        unsafe { inst.get_physical_device_features2(pd, &mut feats2) };

        let has_budget = has("VK_EXT_memory_budget");
        let mut budget = vk::PhysicalDeviceMemoryBudgetPropertiesEXT::default();
        let mut mem2 = vk::PhysicalDeviceMemoryProperties2::default();
        if has_budget {
            mem2 = mem2.push_next(&mut budget);
        }
        unsafe { inst.get_physical_device_memory_properties2(pd, &mut mem2) };
        let mem = mem2.memory_properties;
        let local_heaps = local_heaps(&mem, has_budget.then_some(&budget.heap_budget));

        let families = unsafe { inst.get_physical_device_queue_family_properties(pd) };
        let compute_family = families
            .iter()
            .position(|f| f.queue_flags.contains(vk::QueueFlags::COMPUTE))
            .map(|i| i as u32);
        let transfer_family = families
            .iter()
            .position(|f| {
                f.queue_flags.contains(vk::QueueFlags::TRANSFER)
                    && !f
                        .queue_flags
                        .intersects(vk::QueueFlags::COMPUTE | vk::QueueFlags::GRAPHICS)
            })
            .map(|i| i as u32);

        let driver_text = if has_driver {
            let name = c_text(&driver.driver_name);
            let info = c_text(&driver.driver_info);
            format!("{name} {info}").trim().to_string()
        } else {
            format!("version {:#x}", props.driver_version)
        };
        let subgroup_arithmetic = subgroup
            .supported_stages
            .contains(vk::ShaderStageFlags::COMPUTE)
            && subgroup
                .supported_operations
                .contains(vk::SubgroupFeatureFlags::BASIC | vk::SubgroupFeatureFlags::ARITHMETIC);
        DeviceInfo {
            index,
            handle: pd,
            name: c_text(&props.device_name),
            kind: kind_of(props.device_type),
            api_version: api,
            driver: driver_text,
            local_heaps,
            subgroup_size: subgroup.subgroup_size.max(1),
            max_storage_buffer_range: limits.max_storage_buffer_range as u64,
            max_allocation_size: maint3.max_memory_allocation_size,
            max_workgroup_count: limits.max_compute_work_group_count,
            max_workgroup_invocations: limits.max_compute_work_group_invocations,
            max_shared_memory: limits.max_compute_shared_memory_size,
            features: Features {
                storage_8bit: s8.storage_buffer8_bit_access != 0,
                storage_16bit: s16.storage_buffer16_bit_access != 0,
                float16: f16i8.shader_float16 != 0,
                int8: f16i8.shader_int8 != 0,
                int_dot_product: dot.shader_integer_dot_product != 0,
                subgroup_arithmetic,
            },
            compute_family,
            transfer_family,
        }
    }
}

impl Instance {
    /// What a Vulkan 1.0 instance can say of a device (enough to list it and refuse it).
    fn describe_basic(
        &self,
        index: usize,
        pd: vk::PhysicalDevice,
        props: vk::PhysicalDeviceProperties,
        api: u32,
    ) -> DeviceInfo {
        // SAFETY: Vulkan 1.0 queries on a live instance and one of its physical devices.
        let mem = unsafe { self.raw.get_physical_device_memory_properties(pd) };
        let families = unsafe { self.raw.get_physical_device_queue_family_properties(pd) };
        let limits = props.limits;
        DeviceInfo {
            index,
            handle: pd,
            name: c_text(&props.device_name),
            kind: kind_of(props.device_type),
            api_version: api,
            driver: format!("version {:#x}", props.driver_version),
            local_heaps: local_heaps(&mem, None),
            subgroup_size: 1,
            max_storage_buffer_range: limits.max_storage_buffer_range as u64,
            max_allocation_size: limits.max_storage_buffer_range as u64,
            max_workgroup_count: limits.max_compute_work_group_count,
            max_workgroup_invocations: limits.max_compute_work_group_invocations,
            max_shared_memory: limits.max_compute_shared_memory_size,
            features: Features::default(),
            compute_family: families
                .iter()
                .position(|f| f.queue_flags.contains(vk::QueueFlags::COMPUTE))
                .map(|i| i as u32),
            transfer_family: None,
        }
    }
}

/// The device-local heaps, with their budgets where the driver reports them.
fn local_heaps(mem: &vk::PhysicalDeviceMemoryProperties, budgets: Option<&[u64; 16]>) -> Vec<Heap> {
    (0..mem.memory_heap_count as usize)
        .filter(|&h| {
            mem.memory_heaps[h]
                .flags
                .contains(vk::MemoryHeapFlags::DEVICE_LOCAL)
        })
        .map(|h| Heap {
            size: mem.memory_heaps[h].size,
            budget: budgets.map(|b| b[h]),
        })
        .collect()
}

fn kind_of(t: vk::PhysicalDeviceType) -> DeviceKind {
    match t {
        vk::PhysicalDeviceType::DISCRETE_GPU => DeviceKind::Discrete,
        vk::PhysicalDeviceType::INTEGRATED_GPU => DeviceKind::Integrated,
        vk::PhysicalDeviceType::VIRTUAL_GPU => DeviceKind::Virtual,
        vk::PhysicalDeviceType::CPU => DeviceKind::Cpu,
        _ => DeviceKind::Other,
    }
}

fn c_text(chars: &[std::ffi::c_char]) -> String {
    // SAFETY: c_char and u8 have the same size and alignment.
    let bytes: &[u8] = unsafe { std::slice::from_raw_parts(chars.as_ptr().cast(), chars.len()) };
    CStr::from_bytes_until_nul(bytes)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: the only thing made from an instance is a `Gpu`'s device, and a `Gpu` owns its
        // `Instance` and destroys the device first (`Gpu::drop`).
        unsafe { self.raw.destroy_instance(None) };
    }
}
