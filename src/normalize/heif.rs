//! HEIC/HEIF photos, decoded by the system's libheif, loaded when the first one is met.
//!
//! Phone archives are full of HEIC photos, but libheif is a C library with codecs of
//! its own (libde265, x265, dav1d, aom). Linking it at build time would make every
//! build need its development package; loading it at run time lets `cargo build` and
//! `cargo test` work on a machine with only a Rust toolchain, and lets a machine that
//! never meets a HEIC photo run without it. Where it cannot be loaded, each HEIC photo
//! fails with [`Unavailable`], whose text says what to install; the rest of the job
//! goes on.
//!
//! The library is looked for once per process, under its usual names
//! ([`LIBRARY_NAMES`]), or only at the path given to [`use_library`] (the binary passes
//! `FACEENROLL_LIBHEIF` there). Only the few functions of libheif's stable C API that
//! decoding needs are bound here, each with the signature of `heif.h` (libheif 1.x).
//! [`Libheif::encode_heic`] makes HEIC photos for the tests and benchmarks.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The names the library is looked for under, in order, on this system.
#[cfg(target_os = "macos")]
pub const LIBRARY_NAMES: &[&str] = &[
    "libheif.1.dylib",
    "/opt/homebrew/lib/libheif.1.dylib",
    "/usr/local/lib/libheif.1.dylib",
];
#[cfg(windows)]
pub const LIBRARY_NAMES: &[&str] = &["heif.dll", "libheif.dll"];
#[cfg(not(any(target_os = "macos", windows)))]
pub const LIBRARY_NAMES: &[&str] = &["libheif.so.1", "libheif.so"];

/// What to install, by system, where the library is missing.
const INSTALL_HINT: &str = "install it: apt-get install libheif1 (Debian, Ubuntu), \
     dnf install libheif (Fedora, RHEL), apk add libheif (Alpine), brew install libheif (macOS)";

/// Why HEIC/HEIF photos cannot be decoded in this process: every place the library was
/// looked for, and why each failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// (where, why) for each place tried.
    pub tried: Vec<(String, String)>,
}

impl Unavailable {
    /// Where the library was looked for and what to install, without the leading
    /// "HEIC/HEIF photos need ...".
    pub fn detail(&self) -> String {
        let mut places = Vec::new();
        for (place, why) in &self.tried {
            // dlerror() names the file itself; say it once.
            places.push(if why.contains(place.as_str()) {
                why.clone()
            } else {
                format!("{place}: {why}")
            });
        }
        format!(
            "libheif could not be loaded ({}); {INSTALL_HINT}",
            places.join("; ")
        )
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HEIC/HEIF photos are decoded by the system's libheif: {}",
            self.detail()
        )
    }
}

impl std::error::Error for Unavailable {}

/// `struct heif_error`, returned by value by most calls.
#[repr(C)]
#[derive(Clone, Copy)]
struct HeifError {
    code: c_int,
    subcode: c_int,
    message: *const c_char,
}

/// `struct heif_init_params`.
#[repr(C)]
struct InitParams {
    version: c_int,
}

/// `struct heif_writer`, version 1.
#[repr(C)]
struct Writer {
    writer_api_version: c_int,
    write: unsafe extern "C" fn(*mut c_void, *const c_void, usize, *mut c_void) -> HeifError,
}

// Opaque pointers: heif_context, heif_image_handle, heif_image, heif_encoder.
type Ptr = *mut c_void;

const COLORSPACE_RGB: c_int = 1;
const CHROMA_INTERLEAVED_RGB: c_int = 10;
const CHROMA_INTERLEAVED_RGBA: c_int = 11;
const CHANNEL_INTERLEAVED: c_int = 10;
const COMPRESSION_HEVC: c_int = 1;

/// The decoding functions, looked up when the library is loaded.
struct Api {
    context_alloc: unsafe extern "C" fn() -> Ptr,
    context_free: unsafe extern "C" fn(Ptr),
    read_from_memory_without_copy:
        unsafe extern "C" fn(Ptr, *const c_void, usize, *const c_void) -> HeifError,
    primary_image_handle: unsafe extern "C" fn(Ptr, *mut Ptr) -> HeifError,
    handle_release: unsafe extern "C" fn(Ptr),
    handle_width: unsafe extern "C" fn(Ptr) -> c_int,
    handle_height: unsafe extern "C" fn(Ptr) -> c_int,
    handle_has_alpha: unsafe extern "C" fn(Ptr) -> c_int,
    profile_size: unsafe extern "C" fn(Ptr) -> usize,
    profile: unsafe extern "C" fn(Ptr, *mut c_void) -> HeifError,
    decode_image: unsafe extern "C" fn(Ptr, *mut Ptr, c_int, c_int, *const c_void) -> HeifError,
    image_width: unsafe extern "C" fn(Ptr, c_int) -> c_int,
    image_height: unsafe extern "C" fn(Ptr, c_int) -> c_int,
    plane_readonly: unsafe extern "C" fn(Ptr, c_int, *mut c_int) -> *const u8,
    image_release: unsafe extern "C" fn(Ptr),
}

/// The loaded library.
pub struct Libheif {
    api: Api,
    /// Where it was loaded from, as it was asked for.
    place: String,
    /// `heif_get_version()`, e.g. "1.15.1".
    version: String,
    // Last: the functions above point into it.
    library: libloading::Library,
}

static CHOSEN: OnceLock<PathBuf> = OnceLock::new();
static LOADED: OnceLock<Result<Libheif, Unavailable>> = OnceLock::new();

/// Looks for the library only at `path`, rather than under [`LIBRARY_NAMES`]. Call it
/// before the first HEIC photo; it answers false, and changes nothing, once a place was
/// chosen or the library was looked for.
pub fn use_library(path: PathBuf) -> bool {
    LOADED.get().is_none() && CHOSEN.set(path).is_ok()
}

/// The library, loaded on the first call.
pub fn library() -> Result<&'static Libheif, &'static Unavailable> {
    LOADED
        .get_or_init(|| match CHOSEN.get() {
            Some(path) => Libheif::load_from(&[path.to_string_lossy().as_ref()]),
            None => Libheif::load_from(LIBRARY_NAMES),
        })
        .as_ref()
}

/// One line on HEIC/HEIF decoding in this process, for `--version` and
/// `--print-config`: "libheif 1.15.1 (libheif.so.1)", or why it is not available.
pub fn availability() -> String {
    match library() {
        Ok(lib) => format!("libheif {} ({})", lib.version, lib.place),
        Err(why) => format!("not available: {}", why.detail()),
    }
}

/// Copies a libheif error out: Ok for code 0.
fn check(error: HeifError) -> Result<(), String> {
    if error.code == 0 {
        return Ok(());
    }
    let message = if error.message.is_null() {
        String::new()
    } else {
        // SAFETY: libheif's messages are NUL-terminated strings that live at least as
        // long as the context the call was made on, which is still alive here.
        unsafe { CStr::from_ptr(error.message) }
            .to_string_lossy()
            .into_owned()
    };
    Err(format!(
        "HEIC/HEIF: {message} (libheif error {}.{})",
        error.code, error.subcode
    ))
}

impl Libheif {
    /// Loads the first of `places` that opens and has every function needed.
    fn load_from(places: &[&str]) -> Result<Libheif, Unavailable> {
        let mut tried = Vec::new();
        for place in places {
            match Libheif::load(place) {
                Ok(lib) => return Ok(lib),
                Err(why) => tried.push((place.to_string(), why)),
            }
        }
        Err(Unavailable { tried })
    }

    fn load(place: &str) -> Result<Libheif, String> {
        // SAFETY: loading libheif runs its initializers, which only set up its own
        // tables; the library is a C library with no Rust-side invariants.
        let library = unsafe { libloading::Library::new(place) }.map_err(|e| e.to_string())?;
        macro_rules! get {
            ($name:literal) => {
                // SAFETY: each symbol is read with the signature `heif.h` gives it.
                *unsafe { library.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| format!("not a usable libheif ({e})"))?
            };
        }
        let get_version: unsafe extern "C" fn() -> *const c_char = get!("heif_get_version");
        // SAFETY: heif_get_version returns a static NUL-terminated string.
        let version = unsafe { CStr::from_ptr(get_version()) }
            .to_string_lossy()
            .into_owned();
        if !version.starts_with("1.") {
            return Err(format!("libheif {version}; version 1.x is needed"));
        }
        let api = Api {
            context_alloc: get!("heif_context_alloc"),
            context_free: get!("heif_context_free"),
            read_from_memory_without_copy: get!("heif_context_read_from_memory_without_copy"),
            primary_image_handle: get!("heif_context_get_primary_image_handle"),
            handle_release: get!("heif_image_handle_release"),
            handle_width: get!("heif_image_handle_get_width"),
            handle_height: get!("heif_image_handle_get_height"),
            handle_has_alpha: get!("heif_image_handle_has_alpha_channel"),
            profile_size: get!("heif_image_handle_get_raw_color_profile_size"),
            profile: get!("heif_image_handle_get_raw_color_profile"),
            decode_image: get!("heif_decode_image"),
            image_width: get!("heif_image_get_width"),
            image_height: get!("heif_image_get_height"),
            plane_readonly: get!("heif_image_get_plane_readonly"),
            image_release: get!("heif_image_release"),
        };
        // heif_init (1.13 and later) registers the decoders of plugin builds; older
        // versions register them on their own.
        // SAFETY: heif_init takes its parameters by pointer, read during the call.
        if let Ok(init) = unsafe {
            library.get::<unsafe extern "C" fn(*mut InitParams) -> HeifError>(b"heif_init\0")
        } {
            let mut params = InitParams { version: 0 };
            check(unsafe { init(&mut params) })?;
        }
        Ok(Libheif {
            api,
            place: place.to_owned(),
            version,
            library,
        })
    }

    /// The library's version, e.g. "1.15.1".
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Reads the container of a HEIC/HEIF file held in `bytes`: its primary image.
    pub(super) fn open<'a>(&'a self, bytes: &'a [u8]) -> Result<Primary<'a>, String> {
        let context = Context::new(self)?;
        // SAFETY: `bytes` outlives the context (both are bound to 'a), as reading
        // without a copy requires.
        check(unsafe {
            (self.api.read_from_memory_without_copy)(
                context.ptr,
                bytes.as_ptr().cast(),
                bytes.len(),
                std::ptr::null(),
            )
        })?;
        let mut handle = std::ptr::null_mut();
        // SAFETY: a live context and a place for the handle.
        check(unsafe { (self.api.primary_image_handle)(context.ptr, &mut handle) })?;
        Ok(Primary {
            ptr: handle,
            context,
        })
    }

    /// Encodes an 8-bit RGB picture (`width` × `height`, rows packed) as a HEIC file with
    /// the library's HEVC encoder at `quality` (0–100). For tests and benchmarks, which
    /// need HEIC photos to read.
    pub fn encode_heic(
        &self,
        rgb: &[u8],
        width: u32,
        height: u32,
        quality: u8,
    ) -> Result<Vec<u8>, String> {
        let row = width as usize * 3;
        assert_eq!(rgb.len(), row * height as usize, "RGB rows packed");
        macro_rules! get {
            ($name:literal) => {
                // SAFETY: each symbol is read with the signature `heif.h` gives it.
                *unsafe { self.library.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| e.to_string())?
            };
        }
        type Call3 = unsafe extern "C" fn(Ptr, c_int, *mut Ptr) -> HeifError;
        let encoder_for_format: Call3 = get!("heif_context_get_encoder_for_format");
        let set_quality: unsafe extern "C" fn(Ptr, c_int) -> HeifError =
            get!("heif_encoder_set_lossy_quality");
        let encoder_release: unsafe extern "C" fn(Ptr) = get!("heif_encoder_release");
        let image_create: unsafe extern "C" fn(c_int, c_int, c_int, c_int, *mut Ptr) -> HeifError =
            get!("heif_image_create");
        let add_plane: unsafe extern "C" fn(Ptr, c_int, c_int, c_int, c_int) -> HeifError =
            get!("heif_image_add_plane");
        let plane: unsafe extern "C" fn(Ptr, c_int, *mut c_int) -> *mut u8 =
            get!("heif_image_get_plane");
        let encode: unsafe extern "C" fn(Ptr, Ptr, Ptr, *const c_void, *mut Ptr) -> HeifError =
            get!("heif_context_encode_image");
        let write: unsafe extern "C" fn(Ptr, *mut Writer, *mut c_void) -> HeifError =
            get!("heif_context_write");

        unsafe extern "C" fn append(
            _context: *mut c_void,
            data: *const c_void,
            size: usize,
            out: *mut c_void,
        ) -> HeifError {
            // SAFETY: `out` is the Vec handed to heif_context_write below, and `data`
            // holds `size` bytes for the duration of the call.
            let out = unsafe { &mut *out.cast::<Vec<u8>>() };
            out.extend_from_slice(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size) });
            HeifError {
                code: 0,
                subcode: 0,
                message: c"Success".as_ptr(),
            }
        }

        let (w, h) = (width as c_int, height as c_int);
        let context = Context::new(self)?;
        // SAFETY: every pointer below is created here and released by its guard; the
        // plane is written within the stride and rows libheif reports.
        unsafe {
            let mut image = std::ptr::null_mut();
            check(image_create(
                w,
                h,
                COLORSPACE_RGB,
                CHROMA_INTERLEAVED_RGB,
                &mut image,
            ))?;
            let image = Image {
                lib: self,
                ptr: image,
            };
            check(add_plane(image.ptr, CHANNEL_INTERLEAVED, w, h, 8))?;
            let mut stride = 0;
            let pixels = plane(image.ptr, CHANNEL_INTERLEAVED, &mut stride);
            if pixels.is_null() {
                return Err("libheif gave no plane to write".into());
            }
            for (y, line) in rgb.chunks(row).enumerate() {
                let dest = pixels.add(y * stride as usize);
                std::ptr::copy_nonoverlapping(line.as_ptr(), dest, row);
            }
            let mut encoder = std::ptr::null_mut();
            check(encoder_for_format(
                context.ptr,
                COMPRESSION_HEVC,
                &mut encoder,
            ))?;
            let encoded = check(set_quality(encoder, c_int::from(quality))).and_then(|()| {
                check(encode(
                    context.ptr,
                    image.ptr,
                    encoder,
                    std::ptr::null(),
                    std::ptr::null_mut(),
                ))
            });
            encoder_release(encoder);
            encoded?;
            let mut out = Vec::new();
            let mut writer = Writer {
                writer_api_version: 1,
                write: append,
            };
            check(write(
                context.ptr,
                &mut writer,
                (&mut out as *mut Vec<u8>).cast(),
            ))?;
            Ok(out)
        }
    }
}

/// A `heif_context`, freed on drop.
struct Context<'a> {
    lib: &'a Libheif,
    ptr: Ptr,
}

impl<'a> Context<'a> {
    fn new(lib: &'a Libheif) -> Result<Context<'a>, String> {
        // SAFETY: allocates a new context, owned by the value returned.
        let ptr = unsafe { (lib.api.context_alloc)() };
        if ptr.is_null() {
            return Err("libheif could not allocate a context".into());
        }
        Ok(Context { lib, ptr })
    }
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        // SAFETY: the context this value owns, freed once, after its handles.
        unsafe { (self.lib.api.context_free)(self.ptr) }
    }
}

/// The primary image of a HEIC/HEIF file: its handle, released on drop before its
/// context.
pub(super) struct Primary<'a> {
    ptr: Ptr,
    context: Context<'a>,
}

impl Drop for Primary<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle this value owns, released once, before its context
        // (fields drop after this).
        unsafe { (self.context.lib.api.handle_release)(self.ptr) }
    }
}

/// Pixels libheif decoded: 8-bit RGB or RGBA, rows packed.
pub(super) struct Pixels {
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) alpha: bool,
    pub(super) data: Vec<u8>,
}

impl Primary<'_> {
    fn api(&self) -> &Api {
        &self.context.lib.api
    }

    /// The dimensions of the upright picture, its rotation and mirroring applied.
    pub(super) fn dims(&self) -> (u32, u32) {
        // SAFETY: a live handle.
        let (w, h) = unsafe {
            (
                (self.api().handle_width)(self.ptr),
                (self.api().handle_height)(self.ptr),
            )
        };
        (w.max(0) as u32, h.max(0) as u32)
    }

    pub(super) fn has_alpha(&self) -> bool {
        // SAFETY: a live handle.
        unsafe { (self.api().handle_has_alpha)(self.ptr) != 0 }
    }

    /// The raw ICC profile stored with the image, if any.
    pub(super) fn color_profile(&self) -> Option<Vec<u8>> {
        // SAFETY: a live handle; the profile is copied into a buffer of the size
        // libheif gives for it.
        unsafe {
            let size = (self.api().profile_size)(self.ptr);
            if size == 0 {
                return None;
            }
            let mut data = vec![0u8; size];
            check((self.api().profile)(self.ptr, data.as_mut_ptr().cast())).ok()?;
            Some(data)
        }
    }

    /// Decodes the image upright (libheif applies the container's `irot` and `imir`,
    /// which stand in for an EXIF orientation), as interleaved 8-bit RGB, or RGBA when
    /// it has alpha.
    pub(super) fn decode(&self) -> Result<Pixels, String> {
        let alpha = self.has_alpha();
        let chroma = if alpha {
            CHROMA_INTERLEAVED_RGBA
        } else {
            CHROMA_INTERLEAVED_RGB
        };
        let lib = self.context.lib;
        let mut ptr = std::ptr::null_mut();
        // SAFETY: a live handle and a place for the image, owned by the guard below.
        check(unsafe {
            (lib.api.decode_image)(self.ptr, &mut ptr, COLORSPACE_RGB, chroma, std::ptr::null())
        })?;
        let image = Image { lib, ptr };
        let channels = if alpha { 4 } else { 3 };
        let mut stride: c_int = 0;
        // SAFETY: a live image; its plane holds `height` rows of `stride` bytes, each
        // at least `width * channels` long, read before the image is released.
        unsafe {
            let width = (lib.api.image_width)(image.ptr, CHANNEL_INTERLEAVED);
            let height = (lib.api.image_height)(image.ptr, CHANNEL_INTERLEAVED);
            let plane = (lib.api.plane_readonly)(image.ptr, CHANNEL_INTERLEAVED, &mut stride);
            if plane.is_null() || width <= 0 || height <= 0 || stride <= 0 {
                return Err("libheif gave no interleaved RGB plane".into());
            }
            let (width, height, stride) = (width as usize, height as usize, stride as usize);
            let row = width * channels;
            if stride < row {
                return Err("libheif gave a plane narrower than its picture".into());
            }
            let mut data = Vec::with_capacity(row * height);
            for y in 0..height {
                data.extend_from_slice(std::slice::from_raw_parts(plane.add(y * stride), row));
            }
            Ok(Pixels {
                width: width as u32,
                height: height as u32,
                alpha,
                data,
            })
        }
    }
}

/// A `heif_image`, released on drop.
struct Image<'a> {
    lib: &'a Libheif,
    ptr: Ptr,
}

impl Drop for Image<'_> {
    fn drop(&mut self) {
        // SAFETY: the image this value owns, released once.
        unsafe { (self.lib.api.image_release)(self.ptr) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_says_where_it_was_looked_for_and_what_to_install() {
        let why = Libheif::load_from(&["/nonexistent/libheif.so.1"])
            .err()
            .expect("no library there");
        let message = why.to_string();
        assert!(message.contains("/nonexistent/libheif.so.1"), "{message}");
        assert!(message.contains("apt-get install libheif1"), "{message}");
        assert_eq!(
            message.matches("/nonexistent/libheif.so.1").count(),
            1,
            "{message}"
        );
    }

    #[test]
    fn a_library_that_is_not_libheif_is_refused_with_the_reason() {
        // The C library is loaded in every process here and has none of libheif's
        // functions.
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            let why = Libheif::load_from(&["libc.so.6"])
                .err()
                .expect("not libheif");
            assert_eq!(why.tried.len(), 1);
            assert!(why.tried[0].1.contains("not a usable libheif"), "{why}");
        }
    }
}
