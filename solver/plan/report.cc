// Text table and SVG of a plan (report.h). Numbers are printed with snprintf in fixed formats,
// so the output is byte-identical across runs and machines (STYLE.md 31); the SVG is written by
// hand (no XML library in solver/) with every plan string passed through xml_escape.
// Pure C++: no I/O here; the caller writes the files.
#include "solver/plan/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <vector>

namespace strata::solver {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

std::string fmt(const char* format, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, x);
  return buf;
}

// Seconds with a unit that keeps 3-4 significant digits: "850 us", "210.0 ms", "14.20 s".
std::string seconds_text(double s) {
  if (!std::isfinite(s)) return "?";
  if (s == 0) return "0 s";
  if (s < 1e-3) return fmt("%.1f us", s * 1e6);
  if (s < 1) return fmt("%.2f ms", s * 1e3);
  return fmt("%.3f s", s);
}

// Bytes in binary units: "512 B", "1.50 KiB", "12.34 GiB".
std::string bytes_text(double b) {
  if (!std::isfinite(b)) return "?";
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (b >= 1024 && u < 5) {
    b /= 1024;
    ++u;
  }
  return u == 0 ? fmt("%.0f B", b) : fmt("%.2f ", b) + units[u];
}

// World ranks in listed order, consecutive runs joined: 0,1,2,3,8,9 -> "0-3,8-9".
std::string ranks_text(const std::vector<std::int64_t>& ranks) {
  std::string out;
  for (std::size_t i = 0; i < ranks.size();) {
    std::size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (!out.empty()) out += ",";
    out += std::to_string(ranks[i]);
    if (j > i) out += "-" + std::to_string(ranks[j]);
    i = j + 1;
  }
  return out.empty() ? "-" : out;
}

std::string layers_text(const PlanStage& s) {
  return "[" + std::to_string(s.layer_begin) + ", " + std::to_string(s.layer_end) + ")";
}

// Left-aligned columns separated by two spaces; the last column is not padded.
std::string render_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

// Stage colours: Tableau 10, then golden-angle hues (any number of stages stays distinct-ish).
std::string stage_colour(std::size_t i) {
  static const char* kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                   "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
  if (i < 10) return kPalette[i];
  char buf[48];
  std::snprintf(buf, sizeof buf, "hsl(%d,55%%,55%%)", static_cast<int>((i * 137) % 360));
  return buf;
}

std::string num(double x) { return fmt("%.2f", x); }

}  // namespace

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        if (c < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') break;  // not allowed in XML
        if (c == 0x7f) break;
        out += ch;
    }
  }
  return out;
}

std::string plan_table(const Plan& plan) {
  std::vector<std::vector<std::string>> rows = {{"stage", "layers", "devices", "sub-mesh",
                                                 "logical mesh", "summary", "recompute",
                                                 "time/micro-batch", "memory/device (GiB)"}};
  for (std::size_t i = 0; i < plan.stages.size(); ++i) {
    const PlanStage& s = plan.stages[i];
    const bool group_ok =
        s.group >= 0 && s.group < static_cast<std::int64_t>(plan.cluster.groups.size());
    const double capacity =
        group_ok ? plan.cluster.groups[static_cast<std::size_t>(s.group)].device.memory_bytes : 0;
    const double need = s.predicted.memory_bytes_per_device;
    std::string memory = fmt("%.2f", need / kGiB) + " / " +
                         (group_ok ? fmt("%.2f", capacity / kGiB) : std::string("?"));
    if (group_ok && need > capacity) memory += " !";
    rows.push_back({std::to_string(i), layers_text(s), ranks_text(s.devices),
                    std::to_string(s.submesh.hosts) + "x" + std::to_string(s.submesh.devices),
                    std::to_string(s.logical_mesh.d0) + "x" + std::to_string(s.logical_mesh.d1),
                    s.summary.empty() ? "-" : s.summary, s.recompute ? "yes" : "no",
                    seconds_text(s.predicted.time_per_microbatch_s), memory});
  }
  std::string out = render_table(rows);
  const std::int64_t mb_size = plan.micro_batches > 0 ? plan.global_batch / plan.micro_batches : 0;
  out += "method: " + plan.method + "   schedule: " + plan.schedule +
         "   micro-batches: " + std::to_string(plan.micro_batches) + " x " +
         std::to_string(mb_size) + " sequences (global batch " + std::to_string(plan.global_batch) +
         ")\n";
  out += "cluster: " + (plan.cluster.name.empty() ? std::string("-") : plan.cluster.name) + ", " +
         std::to_string(plan.cluster.groups.size()) + " group(s), " +
         std::to_string(plan.cluster.total_devices()) + " devices\n";
  out += "predicted: iteration " + seconds_text(plan.predicted.iteration_s) + ", " +
         fmt("%.2f", plan.predicted.tflops_per_device) + " TFLOP/s per device\n";
  const BytesPerStep& b = plan.predicted.bytes_per_step;
  out += "bytes per step: all_reduce " + bytes_text(b.all_reduce) + ", all_gather " +
         bytes_text(b.all_gather) + ", reduce_scatter " + bytes_text(b.reduce_scatter) +
         ", all_to_all " + bytes_text(b.all_to_all) + ", p2p " + bytes_text(b.p2p) + "\n";
  out += "search: " + seconds_text(plan.search.wall_s) + " wall, " +
         std::to_string(plan.search.ilps_solved) + " ILPs solved\n";
  for (const auto& [name, seconds] : plan.search.phases_s) {
    out += "  phase " + name + ": " + seconds_text(seconds) + "\n";
  }
  return out;
}

std::string plan_svg(const Plan& plan, const SimulationResult& sim) {
  if (sim.stages.size() != plan.stages.size()) {
    throw std::invalid_argument("plan_svg: simulation has " + std::to_string(sim.stages.size()) +
                                " stages, the plan " + std::to_string(plan.stages.size()));
  }
  // Owner stage of every device (-1: none).
  const std::int64_t total = plan.cluster.total_devices();
  std::vector<std::int64_t> owner(static_cast<std::size_t>(std::max<std::int64_t>(total, 0)), -1);
  for (std::size_t i = 0; i < plan.stages.size(); ++i) {
    for (std::int64_t d : plan.stages[i].devices) {
      if (d >= 0 && d < total) owner[static_cast<std::size_t>(d)] = static_cast<std::int64_t>(i);
    }
  }

  // Geometry (pixels).
  const double margin = 20, label_w = 110, cell = 26, lane_h = 22, lane_gap = 6;
  std::int64_t max_cols = 1;
  for (const HostGroup& g : plan.cluster.groups) max_cols = std::max(max_cols, g.devices_per_host);
  const double grid_w = label_w + static_cast<double>(max_cols) * cell;
  const double legend_x = margin + grid_w + 30;
  const double width = std::max(900.0, legend_x + 380);
  std::string body;
  double y = margin + 16;
  body += "<text x=\"" + num(margin) + "\" y=\"" + num(y) +
          "\" class=\"title\">Strata plan: " + xml_escape(plan.method) + ", " +
          std::to_string(plan.stages.size()) + " stage(s), " + xml_escape(plan.schedule) + ", " +
          std::to_string(plan.micro_batches) + " micro-batches</text>\n";
  y += 16;

  // (top) devices as hosts x devices grids, one per host group.
  const double grid_top = y;
  std::int64_t rank = 0;
  for (std::size_t g = 0; g < plan.cluster.groups.size(); ++g) {
    const HostGroup& group = plan.cluster.groups[g];
    y += 16;
    body += "<text x=\"" + num(margin) + "\" y=\"" + num(y) + "\">group " + xml_escape(group.name) +
            " (" + xml_escape(group.device.kind) + ")</text>\n";
    y += 6;
    for (std::int64_t h = 0; h < group.hosts; ++h) {
      body += "<text x=\"" + num(margin) + "\" y=\"" + num(y + cell * 0.65) + "\">host " +
              std::to_string(h) + "</text>\n";
      for (std::int64_t d = 0; d < group.devices_per_host; ++d, ++rank) {
        const std::int64_t st = rank < static_cast<std::int64_t>(owner.size())
                                    ? owner[static_cast<std::size_t>(rank)]
                                    : -1;
        const double x = margin + label_w + static_cast<double>(d) * cell;
        const std::string fill = st >= 0 ? stage_colour(static_cast<std::size_t>(st)) : "#ffffff";
        body += "<rect class=\"device\" x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" +
                num(cell - 3) + "\" height=\"" + num(cell - 3) + "\" fill=\"" + fill +
                "\"><title>rank " + std::to_string(rank) +
                (st >= 0 ? ": stage " + std::to_string(st) : std::string(": no stage")) +
                "</title></rect>\n";
        body += "<text class=\"small\" x=\"" + num(x + (cell - 3) / 2) + "\" y=\"" +
                num(y + cell * 0.6) + "\" text-anchor=\"middle\">" + std::to_string(rank) +
                "</text>\n";
      }
      y += cell;
    }
  }
  // Legend beside the grid.
  double ly = grid_top + 16;
  for (std::size_t i = 0; i < plan.stages.size(); ++i) {
    const PlanStage& s = plan.stages[i];
    body += "<rect class=\"legend\" x=\"" + num(legend_x) + "\" y=\"" + num(ly - 11) +
            "\" width=\"14\" height=\"14\" fill=\"" + stage_colour(i) + "\"/>\n";
    body += "<text x=\"" + num(legend_x + 20) + "\" y=\"" + num(ly) + "\">stage " +
            std::to_string(i) + ": layers " + layers_text(s) + ", mesh " +
            std::to_string(s.logical_mesh.d0) + "x" + std::to_string(s.logical_mesh.d1) +
            (s.summary.empty() ? std::string() : ", " + xml_escape(s.summary)) +
            (s.recompute ? ", recompute" : "") + "</text>\n";
    ly += 18;
  }
  y = std::max(y, ly) + 30;

  // (bottom) the timeline of one iteration.
  body += "<text x=\"" + num(margin) + "\" y=\"" + num(y) + "\" class=\"title\">Timeline of one " +
          "iteration: simulated " + xml_escape(seconds_text(sim.iteration_s)) + ", predicted " +
          xml_escape(seconds_text(plan.predicted.iteration_s)) + "</text>\n";
  y += 14;
  const double lane_x = margin + label_w;
  const double lane_w = width - lane_x - margin;
  const double scale = sim.iteration_s > 0 ? lane_w / sim.iteration_s : 0;
  for (std::size_t i = 0; i < sim.stages.size(); ++i) {
    const StageTimeline& tl = sim.stages[i];
    const double bubble = sim.iteration_s > 0 ? tl.idle_s / sim.iteration_s : 0;
    body += "<text x=\"" + num(margin) + "\" y=\"" + num(y + lane_h * 0.7) + "\">stage " +
            std::to_string(i) + fmt(" (%.0f%% idle)", 100 * bubble) + "</text>\n";
    body += "<rect class=\"lane\" x=\"" + num(lane_x) + "\" y=\"" + num(y) + "\" width=\"" +
            num(lane_w) + "\" height=\"" + num(lane_h) + "\" fill=\"#f2f2f2\"/>\n";
    for (const TimedAction& ta : tl.actions) {
      const double x0 = lane_x + ta.start_s * scale;
      const double w = std::max(0.0, (ta.end_s - ta.start_s) * scale);
      std::string fill = stage_colour(i), extra;
      std::string label = std::to_string(ta.action.micro_batch);
      if (ta.action.kind == ActionKind::kForward) extra = " fill-opacity=\"0.5\"";
      if (ta.action.kind == ActionKind::kOptimizer) {
        fill = "#7f7f7f";
        label = "opt";
      }
      body += "<rect class=\"" + std::string(action_kind_name(ta.action.kind)) + "\" x=\"" +
              num(x0) + "\" y=\"" + num(y) + "\" width=\"" + num(w) + "\" height=\"" + num(lane_h) +
              "\" fill=\"" + fill + "\"" + extra + " stroke=\"#ffffff\"><title>" +
              action_kind_name(ta.action.kind) +
              (ta.action.kind == ActionKind::kOptimizer
                   ? std::string()
                   : " micro-batch " + std::to_string(ta.action.micro_batch)) +
              ": " + xml_escape(seconds_text(ta.start_s)) + " - " +
              xml_escape(seconds_text(ta.end_s)) + "</title></rect>\n";
      if (w >= 7.0 * static_cast<double>(label.size())) {
        body += "<text class=\"small\" x=\"" + num(x0 + w / 2) + "\" y=\"" +
                num(y + lane_h * 0.68) + "\" text-anchor=\"middle\">" + label + "</text>\n";
      }
    }
    y += lane_h + lane_gap;
  }
  // Time axis: 5 ticks.
  body += "<line x1=\"" + num(lane_x) + "\" y1=\"" + num(y) + "\" x2=\"" + num(lane_x + lane_w) +
          "\" y2=\"" + num(y) + "\" stroke=\"#333333\"/>\n";
  for (int k = 0; k <= 4; ++k) {
    const double x = lane_x + lane_w * k / 4;
    body += "<line x1=\"" + num(x) + "\" y1=\"" + num(y) + "\" x2=\"" + num(x) + "\" y2=\"" +
            num(y + 5) + "\" stroke=\"#333333\"/>\n";
    body += "<text class=\"small\" x=\"" + num(x) + "\" y=\"" + num(y + 17) +
            "\" text-anchor=\"middle\">" + xml_escape(seconds_text(sim.iteration_s * k / 4)) +
            "</text>\n";
  }
  y += 32;
  // Key of the timeline.
  const std::string key_colour = stage_colour(0);
  double kx = lane_x;
  const auto key = [&](const std::string& fill, const std::string& extra, const std::string& text) {
    body += "<rect class=\"legend\" x=\"" + num(kx) + "\" y=\"" + num(y - 11) +
            "\" width=\"14\" height=\"14\" fill=\"" + fill + "\"" + extra + "/>\n";
    body += "<text x=\"" + num(kx + 20) + "\" y=\"" + num(y) + "\">" + text + "</text>\n";
    kx += 40 + 7.0 * static_cast<double>(text.size());
  };
  key(key_colour, " fill-opacity=\"0.5\"", "forward (micro-batch)");
  key(key_colour, "", "backward");
  key("#7f7f7f", "", "optimizer (grad sync + update)");
  key("#f2f2f2", " stroke=\"#cccccc\"", "bubble (idle)");
  y += margin;

  std::string svg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width) + "\" height=\"" +
         num(y) + "\" viewBox=\"0 0 " + num(width) + " " + num(y) + "\">\n";
  svg +=
      "<style>text{font-family:sans-serif;font-size:12px;fill:#222222}"
      ".small{font-size:9px}.title{font-size:14px;font-weight:bold}</style>\n";
  svg += "<rect x=\"0\" y=\"0\" width=\"" + num(width) + "\" height=\"" + num(y) +
         "\" fill=\"#ffffff\"/>\n";
  svg += body;
  svg += "</svg>\n";
  return svg;
}

}  // namespace strata::solver
