//! Tokenizer vs the fixtures' vocab tests (llama.cpp's `test-tokenizer-0` format) and the
//! streaming decoder on split multi-byte characters.

mod common;

use std::path::Path;
use tandem::gguf::GgufFile;
use tandem::tokenizer::Tokenizer;

/// Reads a `.inp`/`.out` pair: strings separated by `"\n__ggml_vocab_test__\n"`, and one line
/// of space-prefixed ids per string.
fn cases(vocab: &Path) -> Vec<(String, Vec<u32>)> {
    let inp = std::fs::read_to_string(vocab.with_extension("gguf.inp")).unwrap();
    let out = std::fs::read_to_string(vocab.with_extension("gguf.out")).unwrap();
    let mut texts: Vec<&str> = inp.split("\n__ggml_vocab_test__\n").collect();
    // The file ends with a separator, which leaves one empty tail.
    assert_eq!(texts.pop(), Some(""));
    let ids: Vec<Vec<u32>> = out
        .lines()
        .map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect())
        .collect();
    assert_eq!(texts.len(), ids.len(), "{}", vocab.display());
    texts.into_iter().map(String::from).zip(ids).collect()
}

fn check_vocab(name: &str) {
    let Some(dir) = common::fixture("tokenizers") else {
        return;
    };
    let path = dir.join(name);
    let file = GgufFile::open(&path).unwrap();
    let tok = Tokenizer::from_gguf(&file).unwrap();
    let cases = cases(&path);
    assert!(cases.len() >= 40, "{name}: only {} cases", cases.len());
    let mut failures = Vec::new();
    for (text, want) in &cases {
        let got = tok.encode(text, false).unwrap();
        if &got != want {
            failures.push(format!("{text:?}: got {got:?}, want {want:?}"));
        }
        // Round trip: decoding gives the text back, minus the dummy-prefix space that
        // SentencePiece adds (llama.cpp's test checks the same).
        if !want.is_empty() {
            let back = tok.decode(want).unwrap();
            let expect = text.strip_prefix(' ').unwrap_or(text);
            if back != *text && back != expect {
                failures.push(format!("decode {want:?}: got {back:?}, want {text:?}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn mixtral_vocab_matches_every_case() {
    check_vocab("ggml-vocab-mixtral.gguf");
}

#[test]
fn llama_spm_vocab_matches_every_case() {
    check_vocab("ggml-vocab-llama-spm.gguf");
}

/// The HF `tokenizer.json` path gives the same ids as the GGUF metadata path.
#[test]
fn hf_json_agrees_with_gguf() {
    let Some(dir) = common::fixture("tokenizers") else {
        return;
    };
    let json = std::fs::read_to_string(dir.join("mistral-v1.tokenizer.json")).unwrap();
    let from_json = Tokenizer::from_hf_json(&json).unwrap();
    let path = dir.join("ggml-vocab-mixtral.gguf");
    for (text, want) in cases(&path) {
        assert_eq!(from_json.encode(&text, false).unwrap(), want, "{text:?}");
    }
}

/// Control-token text in user input stays text; in template output it becomes the control id.
#[test]
fn control_text_is_not_forgeable() {
    let Some(dir) = common::fixture("tokenizers") else {
        return;
    };
    let tok = Tokenizer::from_gguf(&GgufFile::open(dir.join("ggml-vocab-mixtral.gguf")).unwrap())
        .unwrap();
    let plain = tok.encode("</s>", false).unwrap();
    assert!(!plain.contains(&2), "user text produced EOS: {plain:?}");
    assert_eq!(tok.encode_template("</s>", false).unwrap(), vec![2]);
    // BOS comes from the file's add_bos flag.
    assert_eq!(tok.encode("", true).unwrap(), vec![1]);
}

/// A character split over byte-fallback tokens is emitted only once it is complete, and the
/// streamed text equals the whole decode.
#[test]
fn stream_holds_back_partial_utf8() {
    let Some(dir) = common::fixture("tokenizers") else {
        return;
    };
    let tok = Tokenizer::from_gguf(&GgufFile::open(dir.join("ggml-vocab-mixtral.gguf")).unwrap())
        .unwrap();
    // Rare CJK and emoji have no piece of their own in the Mistral vocabulary, so they are
    // spelled as `<0xNN>` byte tokens.
    let text = "Hi 🦙 and 鱻!";
    let ids = tok.encode(text, true).unwrap();
    let byte_tokens = ids
        .iter()
        .filter(|&&id| tok.piece(id).is_some_and(|p| p.starts_with("<0x")))
        .count();
    assert!(byte_tokens >= 4, "expected byte fallback in {ids:?}");

    // Prompt = BOS + first word; stream the rest.
    let split = 3;
    let mut stream = tok.stream(&ids[..split]);
    let mut out = String::new();
    for &id in &ids[split..] {
        if let Some(piece) = stream.step(id).unwrap() {
            // Every emitted chunk is whole UTF-8 (a `String` cannot hold anything else) and
            // never contains the replacement character of a broken sequence.
            assert!(!piece.contains('\u{FFFD}'), "broken piece {piece:?}");
            out.push_str(&piece);
        }
    }
    let prefix = tok.decode(&ids[..split]).unwrap();
    assert_eq!(format!("{prefix}{out}"), text);
}

/// The whole WikiText test file (CRLF line endings, 1.3 MB) tokenized from its raw bytes: the
/// first 2048 ids are the ones llama.cpp's KL-divergence runs used, and the count is the
/// fixtures' 343,374 (sentencepiece on the same bytes).
#[test]
fn wikitext_file_tokenizes_like_sentencepiece() {
    let Some(fx) = common::fixtures() else {
        return;
    };
    let tok = Tokenizer::from_gguf(
        &GgufFile::open(fx.join("mixtral-mini/mixtral-mini-Q4_0.gguf")).unwrap(),
    )
    .unwrap();
    let text = std::fs::read_to_string(fx.join("text/wikitext-test.txt")).unwrap();
    assert!(text.contains("\r\n"));
    let ids = tok.encode(&text, true).unwrap();
    let reference = common::model::read_json(&fx.join("mixtral-mini/kld/tokens.json"));
    let want = common::model::ids(&reference["tokens"]);
    assert_eq!(&ids[..want.len()], &want[..]);
    assert_eq!(ids.len(), 343_374);
}

/// The whole stories-moe held-out tail (39,223 tokens) with the 512-piece vocabulary, against
/// SentencePiece's encoding of it (`tests/data/tokenizer/make_tinystories_tail.py`, whose first
/// 4,096 ids are the fixtures' `stories-moe/kld/tokens.json`, checked here too). SentencePiece
/// runs with whitespace collapsing off, as llama.cpp and Hugging Face tokenize this vocabulary
/// (the script says why); the tail's one double space checks that.
#[test]
fn tinystories_tail_tokenizes_like_sentencepiece() {
    let Some(fx) = common::fixtures() else {
        return;
    };
    let tok = Tokenizer::from_gguf(
        &GgufFile::open(fx.join("stories-moe/stories260K-moe8x-finetuned-f32.gguf")).unwrap(),
    )
    .unwrap();
    let bytes = std::fs::read(fx.join("text/tinystories_val.txt")).unwrap();
    let tail = std::str::from_utf8(&bytes[716191..794375]).unwrap();
    let ids = tok.encode(tail, true).unwrap();
    let want: Vec<u32> = include_bytes!("data/tokenizer/tinystories-tail.tok512.u16")
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]) as u32)
        .collect();
    let reference = common::model::read_json(&fx.join("stories-moe/kld/tokens.json"));
    let head = common::model::ids(&reference["tokens"]);
    assert_eq!(
        &want[..head.len()],
        &head[..],
        "the committed ids disagree with the fixtures"
    );
    if let Some(i) = ids.iter().zip(&want).position(|(a, b)| a != b) {
        panic!(
            "first difference at token {i}: ours {:?}, sentencepiece {:?}",
            &ids[i..(i + 8).min(ids.len())],
            &want[i..(i + 8).min(want.len())]
        );
    }
    assert_eq!(ids.len(), want.len(), "token count");
    eprintln!("tinystories tail: {} tokens compared", want.len());
}
