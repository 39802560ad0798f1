#include "core/profile.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "fmt/format.h"

namespace latefuse {
namespace {

using Json = nlohmann::ordered_json;

Json HistogramsJson(const Profile& profile, const ProbabilityProfile& p) {
  Json out = Json::object();
  for (std::size_t c = 0; c < profile.classes.size(); ++c)
    out[profile.classes[c]] = p.histograms[c];
  return out;
}

// Reads one profile.json, each error naming the file and the key.
class ProfileReader {
 public:
  explicit ProfileReader(const std::string& source) : source_(source) {}

  absl::Status Error(const std::string& key, const std::string& problem) const {
    return absl::InvalidArgumentError(
        key.empty()
            ? fmt::format("profile '{}': {}", source_, problem)
            : fmt::format("profile '{}': {}: {}", source_, key, problem));
  }

  absl::StatusOr<const Json*> Member(const Json& object, const std::string& key,
                                     const std::string& path) const {
    auto it = object.find(key);
    if (it == object.end()) return Error(path, "missing");
    return &*it;
  }

  absl::StatusOr<std::size_t> Count(const Json& object, const std::string& key,
                                    const std::string& path) const {
    auto value = Member(object, key, path);
    if (!value.ok()) return value.status();
    if (!(*value)->is_number_unsigned()) {
      return Error(path, fmt::format("expected a non-negative integer, got {}",
                                     (*value)->dump()));
    }
    return (*value)->get<std::size_t>();
  }

  // `histograms` of `path`: one array of `bins` counts per class, each
  // summing to `total`.
  absl::StatusOr<ProbabilityProfile> Histograms(const Json& owner,
                                                const std::string& path,
                                                const Profile& profile,
                                                std::size_t total) const {
    const std::string at = path + ".histograms";
    auto histograms = Member(owner, "histograms", at);
    if (!histograms.ok()) return histograms.status();
    if (!(*histograms)->is_object()) return Error(at, "expected an object");
    for (auto it = (*histograms)->begin(); it != (*histograms)->end(); ++it) {
      if (std::find(profile.classes.begin(), profile.classes.end(), it.key()) ==
          profile.classes.end()) {
        return Error(at + "." + it.key(), "not one of the profile's classes");
      }
    }
    ProbabilityProfile out(profile.classes.size(), profile.bins);
    out.used = total;
    for (std::size_t c = 0; c < profile.classes.size(); ++c) {
      const std::string key = at + "." + profile.classes[c];
      auto counts = Member(**histograms, profile.classes[c], key);
      if (!counts.ok()) return counts.status();
      if (!(*counts)->is_array()) return Error(key, "expected an array");
      if ((*counts)->size() != static_cast<std::size_t>(profile.bins)) {
        return Error(key, fmt::format("{} counts, expected {} (bins)",
                                      (*counts)->size(), profile.bins));
      }
      std::size_t sum = 0;
      for (std::size_t b = 0; b < (*counts)->size(); ++b) {
        const Json& n = (**counts)[b];
        if (!n.is_number_unsigned()) {
          return Error(
              absl::StrCat(key, "[", b, "]"),
              fmt::format("expected a non-negative integer, got {}", n.dump()));
        }
        out.histograms[c][b] = n.get<std::size_t>();
        sum += out.histograms[c][b];
      }
      if (sum != total) {
        return Error(key, fmt::format("counts sum to {}, expected {} (the rows "
                                      "it describes)",
                                      sum, total));
      }
    }
    return out;
  }

 private:
  std::string source_;
};

}  // namespace

ProbabilityProfile::ProbabilityProfile(std::size_t classes, int bins)
    : histograms(classes,
                 std::vector<std::size_t>(static_cast<std::size_t>(bins), 0)) {}

void ProbabilityProfile::Add(const double* probabilities) {
  const int bins =
      static_cast<int>(histograms.empty() ? 0 : histograms[0].size());
  for (std::size_t c = 0; c < histograms.size(); ++c)
    ++histograms[c][ProfileBin(probabilities[c], bins)];
  ++used;
}

int Profile::ModalityIndex(const std::string& name) const {
  for (std::size_t k = 0; k < modalities.size(); ++k) {
    if (modalities[k] == name) return static_cast<int>(k);
  }
  return -1;
}

Profile ModalityProfiles(const PipelineConfig& config, const LabelledRows& data,
                         int bins) {
  const std::size_t C = config.classes.size();
  Profile profile;
  profile.pipeline = config.name;
  profile.classes = config.classes;
  profile.rows = data.rows;
  profile.bins = bins;
  for (std::size_t k = 0; k < config.modalities.size(); ++k) {
    profile.modalities.push_back(config.modalities[k].name);
    ProbabilityProfile& p = profile.distributions.emplace_back(C, bins);
    for (std::size_t r = 0; r < data.rows; ++r) {
      p.present += data.present[k][r];
      if (data.used[k][r]) p.Add(data.probabilities[k].data() + r * C);
    }
  }
  return profile;
}

std::string ProfileJson(const Profile& profile) {
  Json edges = Json::array();
  for (int b = 0; b <= profile.bins; ++b)
    edges.push_back(static_cast<double>(b) / profile.bins);
  Json modalities = Json::object();
  for (std::size_t k = 0; k < profile.modalities.size(); ++k) {
    const ProbabilityProfile& p = profile.distributions[k];
    modalities[profile.modalities[k]] = {
        {"present", p.present},
        {"presence_rate",
         static_cast<double>(p.present) / static_cast<double>(profile.rows)},
        {"used", p.used},
        {"histograms", HistogramsJson(profile, p)}};
  }
  Json json = {{"format", kProfileFormat},   {"pipeline", profile.pipeline},
               {"classes", profile.classes}, {"rows", profile.rows},
               {"bins", profile.bins},       {"edges", edges},
               {"modalities", modalities}};
  if (profile.fused) {
    json["fused"] = {{"rows", profile.fused->used},
                     {"histograms", HistogramsJson(profile, *profile.fused)}};
  }
  return json.dump(1) + "\n";
}

absl::StatusOr<Profile> ParseProfile(const std::string& text,
                                     const std::string& source) {
  const ProfileReader reader(source);
  const Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return reader.Error("", "not valid JSON");
  if (!json.is_object()) return reader.Error("", "expected a JSON object");

  auto format = reader.Member(json, "format", "format");
  if (!format.ok()) return format.status();
  if (!(*format)->is_string() ||
      (*format)->get<std::string>() != kProfileFormat) {
    return reader.Error("format",
                        fmt::format("expected \"{}\", got {}", kProfileFormat,
                                    (*format)->dump()));
  }
  Profile profile;
  if (auto it = json.find("pipeline"); it != json.end() && it->is_string())
    profile.pipeline = it->get<std::string>();

  auto classes = reader.Member(json, "classes", "classes");
  if (!classes.ok()) return classes.status();
  if (!(*classes)->is_array() || (*classes)->size() < 2) {
    return reader.Error("classes", "expected an array of at least 2 strings");
  }
  for (const Json& c : **classes) {
    if (!c.is_string())
      return reader.Error("classes", "expected an array of strings");
    if (std::find(profile.classes.begin(), profile.classes.end(),
                  c.get<std::string>()) != profile.classes.end()) {
      return reader.Error("classes",
                          fmt::format("\"{}\" twice", c.get<std::string>()));
    }
    profile.classes.push_back(c.get<std::string>());
  }

  auto rows = reader.Count(json, "rows", "rows");
  if (!rows.ok()) return rows.status();
  profile.rows = *rows;
  auto bins = reader.Count(json, "bins", "bins");
  if (!bins.ok()) return bins.status();
  if (*bins < 1 || *bins > 1000000) {
    return reader.Error("bins",
                        fmt::format("expected 1 to 1000000, got {}", *bins));
  }
  profile.bins = static_cast<int>(*bins);
  auto edges = reader.Member(json, "edges", "edges");
  if (!edges.ok()) return edges.status();
  bool edges_ok = (*edges)->is_array() && (*edges)->size() == *bins + 1;
  for (std::size_t b = 0; edges_ok && b <= *bins; ++b) {
    const Json& e = (**edges)[b];
    edges_ok = e.is_number() &&
               e.get<double>() == static_cast<double>(b) / profile.bins;
  }
  if (!edges_ok) {
    return reader.Error("edges",
                        fmt::format("expected the {} equal-width bins' edges "
                                    "[0, 1/{}, ..., 1]",
                                    profile.bins, profile.bins));
  }

  auto modalities = reader.Member(json, "modalities", "modalities");
  if (!modalities.ok()) return modalities.status();
  if (!(*modalities)->is_object())
    return reader.Error("modalities", "expected an object");
  for (auto it = (*modalities)->begin(); it != (*modalities)->end(); ++it) {
    const std::string at = "modalities." + it.key();
    if (!it->is_object()) return reader.Error(at, "expected an object");
    auto present = reader.Count(*it, "present", at + ".present");
    if (!present.ok()) return present.status();
    auto used = reader.Count(*it, "used", at + ".used");
    if (!used.ok()) return used.status();
    if (*present > profile.rows) {
      return reader.Error(at + ".present",
                          fmt::format("{} is more than the profile's {} rows",
                                      *present, profile.rows));
    }
    if (*used > *present) {
      return reader.Error(
          at + ".used",
          fmt::format("{} is more than the {} present rows", *used, *present));
    }
    auto p = reader.Histograms(*it, at, profile, *used);
    if (!p.ok()) return p.status();
    p->present = *present;
    profile.modalities.push_back(it.key());
    profile.distributions.push_back(*std::move(p));
  }

  if (auto it = json.find("fused"); it != json.end()) {
    if (!it->is_object()) return reader.Error("fused", "expected an object");
    auto fused_rows = reader.Count(*it, "rows", "fused.rows");
    if (!fused_rows.ok()) return fused_rows.status();
    if (*fused_rows > profile.rows) {
      return reader.Error("fused.rows",
                          fmt::format("{} is more than the profile's {} rows",
                                      *fused_rows, profile.rows));
    }
    auto p = reader.Histograms(*it, "fused", profile, *fused_rows);
    if (!p.ok()) return p.status();
    p->present = profile.rows;
    profile.fused = *std::move(p);
  }
  return profile;
}

absl::StatusOr<Profile> ReadProfile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        fmt::format("profile '{}': cannot be opened", file.string()));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::UnavailableError(
        fmt::format("profile '{}': cannot be read", file.string()));
  }
  return ParseProfile(text.str(), file.string());
}

}  // namespace latefuse
