#include "workers/TextAssembler.h"

#include <algorithm>

namespace duet {

TextAssembler::TextAssembler(std::vector<std::string> stops) {
    for (auto & s : stops) {
        if (!s.empty()) stops_.push_back(std::move(s));
    }
}

size_t TextAssembler::complete_prefix(const std::string & s) {
    const size_t n = s.size();
    // look back at most 3 bytes for the lead byte of a trailing incomplete sequence
    for (size_t back = 1; back <= std::min<size_t>(4, n); back++) {
        const unsigned char c = (unsigned char) s[n - back];
        if ((c & 0xC0) == 0x80) continue;  // continuation byte
        size_t need = 1;
        if ((c & 0xE0) == 0xC0) need = 2;
        else if ((c & 0xF0) == 0xE0) need = 3;
        else if ((c & 0xF8) == 0xF0) need = 4;
        return back >= need ? n : n - back;
    }
    return n;  // only continuation bytes: invalid anyway, let the JS decoder replace them
}

bool TextAssembler::push(const std::string & piece, std::string & out) {
    bytes_ += piece;
    const size_t complete = complete_prefix(bytes_);
    size_t       hit      = std::string::npos;
    for (const auto & s : stops_) {
        const size_t pos = bytes_.find(s, emitted_);
        if (pos != std::string::npos && pos + s.size() <= complete) hit = std::min(hit, pos);
    }
    if (hit != std::string::npos) {
        out = bytes_.substr(emitted_, hit - emitted_);
        text_ += out;
        emitted_ = hit;
        return true;
    }
    // hold back the longest suffix that is a proper prefix of some stop string
    size_t safe = complete;
    for (size_t i = emitted_; i < complete && safe == complete; i++) {
        const size_t len = complete - i;
        for (const auto & s : stops_) {
            if (len < s.size() && bytes_.compare(i, len, s, 0, len) == 0) {
                safe = i;
                break;
            }
        }
    }
    out = bytes_.substr(emitted_, safe - emitted_);
    text_ += out;
    emitted_ = safe;
    return false;
}

std::string TextAssembler::flush() {
    std::string out = bytes_.substr(emitted_);
    text_ += out;
    emitted_ = bytes_.size();
    return out;
}

}  // namespace duet
