//! GGUF v2/v3: a bounds-checked mmap reader with zero-copy tensor views, and a streaming writer.
