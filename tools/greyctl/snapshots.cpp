#include "snapshots.hpp"

#include "grey_api.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace greyctl {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

// Copies `from` to `to` through a temporary file and a rename, so `to` is never half written.
void copy_into_place(const fs::path& from, const fs::path& to) {
    std::error_code ec;
    const fs::path temporary = to.string() + ".tmp." + std::to_string(::getpid());
    fs::copy_file(from, temporary, fs::copy_options::overwrite_existing, ec);
    if (!ec) fs::rename(temporary, to, ec);
    if (ec) {
        std::error_code ignored;
        fs::remove(temporary, ignored);
        throw ApiError(GREY_ERROR_IO, "cannot copy '" + from.string() + "' to '" + to.string() + "': " + ec.message());
    }
}

Snapshot read_manifest(const fs::path& dir) {
    std::ifstream in(dir / "manifest.json");
    const json m = json::parse(in, nullptr, false);
    if (m.is_discarded() || !m.is_object() || !m.contains("id") || !m.contains("created") || !m.contains("files"))
        throw ApiError(GREY_ERROR_CORRUPT, "snapshot '" + dir.string() + "' has no readable manifest.json");
    Snapshot s{m["id"].get<std::string>(), m["created"].get<int64_t>(), m.value("plan", ""), {}};
    for (const auto& f : m["files"]) s.files.push_back({f["path"].get<std::string>(), f["existed"].get<bool>(), f.value("backup", "")});
    return s;
}

}  // namespace

Snapshot take_snapshot(const std::string& state_dir, const std::string& plan, const std::vector<std::string>& paths) {
    const auto existing = list_snapshots(state_dir);
    uint64_t next = 1;
    for (const auto& s : existing) next = std::max<uint64_t>(next, std::stoull(s.id) + 1);
    Snapshot snapshot{std::to_string(next), static_cast<int64_t>(std::time(nullptr)), plan, {}};
    const fs::path dir = fs::path(state_dir) / "snapshots" / snapshot.id;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw ApiError(GREY_ERROR_IO, "cannot create '" + dir.string() + "': " + ec.message());
    json files = json::array();
    for (size_t i = 0; i < paths.size(); ++i) {
        SnapshotFile f{fs::absolute(paths[i]).string(), fs::exists(paths[i]), ""};
        if (f.existed) {
            f.backup = (dir / ("file" + std::to_string(i))).string();
            copy_into_place(f.path, f.backup);
        }
        files.push_back({{"path", f.path}, {"existed", f.existed}, {"backup", f.backup}});
        snapshot.files.push_back(f);
    }
    const json manifest = {{"id", snapshot.id}, {"created", snapshot.created}, {"plan", plan}, {"files", files}};
    std::ofstream(dir / "manifest.json") << manifest.dump(2) << "\n";
    return snapshot;
}

std::vector<Snapshot> list_snapshots(const std::string& state_dir) {
    std::vector<Snapshot> out;
    const fs::path root = fs::path(state_dir) / "snapshots";
    std::error_code ec;
    if (!fs::is_directory(root, ec)) return out;
    for (const auto& entry : fs::directory_iterator(root)) {
        const std::string name = entry.path().filename().string();
        if (!entry.is_directory() || name.empty() || !std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isdigit(c) != 0; })) continue;
        out.push_back(read_manifest(entry.path()));
    }
    std::sort(out.begin(), out.end(), [](const Snapshot& a, const Snapshot& b) { return std::stoull(a.id) < std::stoull(b.id); });
    return out;
}

void restore_snapshot(const Snapshot& snapshot) {
    for (const auto& f : snapshot.files) {
        std::error_code ec;
        if (f.existed) copy_into_place(f.backup, f.path);
        else if (fs::remove(f.path, ec); ec) throw ApiError(GREY_ERROR_IO, "cannot remove '" + f.path + "': " + ec.message());
    }
}

}  // namespace greyctl
