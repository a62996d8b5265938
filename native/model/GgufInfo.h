// readGguf(path): what a GGUF file holds, from its header and metadata only (no tensor data read): for
// `llama-duet inspect`. The file passes gguf_check::precheck first.
#pragma once
#include <napi.h>

namespace duet {

// readGguf(path) → { architecture, name, fileType, contextLength, embeddingLength, blockCount, headCount,
//   headCountKv, feedForwardLength, vocabSize, tokenizerModel, chatTemplate (bool), tensors, parameters,
//   tensorBytes, fileBytes, types: { [ggml type]: { tensors, parameters, bytes } } }
Napi::Value ReadGguf(const Napi::CallbackInfo & info);

}  // namespace duet
