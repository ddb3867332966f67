"""Makes tinystories-tail.tok512.u16: the stories-moe held-out tail tokenized by SentencePiece,
for tests/tokenizer_fixtures.rs.

Run from the crate root with the fixtures beside it:
    pip install sentencepiece==0.2.0 protobuf
    python3 tests/data/tokenizer/make_tinystories_tail.py

The text is bytes [716191, 794375) of text/tinystories_val.txt (the tail the stories-moe models
never trained on, see the fixtures README), encoded whole by the fixtures' tok512.model with BOS
(id 1) in front, as llama.cpp's perplexity tool does. Its first 4,096 ids equal the fixtures'
stories-moe/kld/tokens.json (checked below). Written as little-endian u16, no header.

One setting differs from the model file: tok512.model leaves `remove_extra_whitespaces` at
SentencePiece's default (true), which collapses runs of spaces. A GGUF vocabulary has no field
for it, and llama.cpp's SPM tokenizer and Hugging Face's converted fast tokenizer never collapse
(Mistral's own model sets it false), so the reference is made with it off. The tail has one
double space ("mouth.  The", token 9279), where the two settings differ by one `▁` token.
"""
import json
import struct
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb  # needs: pip install protobuf

FX = "../shared/fixtures"
model = pb.ModelProto()
model.ParseFromString(open(f"{FX}/stories260k/tok512.model", "rb").read())
model.normalizer_spec.remove_extra_whitespaces = False
sp = spm.SentencePieceProcessor(model_proto=model.SerializeToString())
text = open(f"{FX}/text/tinystories_val.txt", "rb").read()[716191:794375].decode("utf-8")
ids = [1] + sp.encode(text)
head = json.load(open(f"{FX}/stories-moe/kld/tokens.json"))["tokens"]
assert ids[: len(head)] == head, "disagrees with the fixtures' tokens.json"
assert max(ids) < 1 << 16
with open("tests/data/tokenizer/tinystories-tail.tok512.u16", "wb") as f:
    f.write(struct.pack(f"<{len(ids)}H", *ids))
print(len(ids), "ids")
