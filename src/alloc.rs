//! The global allocator: mimalloc, called so that ordinary allocations take its fast path.
//!
//! The `mimalloc` crate's allocator passes every allocation to `mi_malloc_aligned`, whose fast
//! path covers only blocks up to 1 KiB that happen to be aligned; every larger block (hyper's read
//! buffers, boxed request futures, header tables) went through mimalloc's generic over-allocating
//! aligned path, about ten times the instructions of `mi_malloc` (2.4 % of a passthrough
//! request's instructions, about seven such blocks a request). `mi_malloc` already aligns every block to
//! 16 bytes (`MI_MAX_ALIGN_SIZE`), so only larger alignments need the aligned calls.

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc, mi_zalloc_aligned,
};
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// What `mi_malloc` aligns every block to.
const MALLOC_ALIGN: usize = 16;

/// mimalloc as the global allocator (see the module's note).
pub struct Mimalloc;

// SAFETY: every block comes from mimalloc with at least the layout's alignment (`mi_malloc` gives
// 16 bytes, the aligned calls any power of two), and every block is freed or resized by mimalloc,
// which accepts blocks from either family.
unsafe impl GlobalAlloc for Mimalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            mi_malloc(layout.size()) as *mut u8
        } else {
            mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            mi_zalloc(layout.size()) as *mut u8
        } else {
            mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi_free(ptr as *mut c_void);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MALLOC_ALIGN {
            mi_realloc(ptr as *mut c_void, new_size) as *mut u8
        } else {
            mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_have_their_alignment_and_keep_their_bytes_when_resized() {
        let a = Mimalloc;
        for (size, align) in [
            (1, 1),
            (24, 8),
            (1500, 16),
            (9000, 8),
            (100, 64),
            (5000, 128),
            (3, 4096),
        ] {
            let layout = Layout::from_size_align(size, align).unwrap();
            unsafe {
                let p = a.alloc(layout);
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "{size} bytes aligned to {align}");
                std::ptr::write_bytes(p, 0xAB, size);
                let q = a.realloc(p, layout, size * 3);
                assert_eq!(q as usize % align, 0);
                assert!((0..size).all(|i| *q.add(i) == 0xAB));
                a.dealloc(q, Layout::from_size_align(size * 3, align).unwrap());
                let z = a.alloc_zeroed(layout);
                assert_eq!(z as usize % align, 0);
                assert!((0..size).all(|i| *z.add(i) == 0));
                a.dealloc(z, layout);
            }
        }
    }
}
