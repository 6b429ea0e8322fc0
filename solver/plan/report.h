// Plans, explained (DESIGN.md section 8 item 7): a text table for logs and `strata plan`, and a
// self-contained SVG of the device assignment and the simulated pipeline timeline. Both are pure
// functions of plain data, deterministic (fixed number formats, C locale), no I/O. Pure C++.
#pragma once

#include <string>

#include "solver/plan/plan.h"
#include "solver/plan/simulator.h"

namespace strata::solver {

// One row per stage: stage, layers [begin, end), devices (world ranks, runs compressed as
// "0-3,8-11"), sub-mesh (hosts x devices), logical mesh (d0 x d1), summary, recompute, time per
// micro-batch, memory per device against the group's capacity in GiB ("!" when over); then
// method, micro-batches and their size, schedule, predicted iteration time, TFLOP/s per device,
// bytes per step per collective kind, search wall time, ILPs solved and each search phase.
// Every line ends with '\n'. Does not validate the plan; an out-of-range group shows "?".
std::string plan_table(const Plan& plan);

// A standalone SVG document (UTF-8, no scripts, no external references):
//   top:    per host group, a grid of hosts (rows) x devices (columns), one <rect class="device">
//           per device, coloured by the stage that owns it (white: none), labelled with its world
//           rank; a legend with one swatch per stage ("stage i: layers [b, e) summary");
//   bottom: the timeline of one iteration from `sim`, one lane per stage; forward boxes light,
//           backward boxes dark in the stage's colour, each labelled with its micro-batch
//           index where it is wide enough; the optimizer box grey; bubbles are the lane's
//           background showing through; a time axis in seconds and the simulated vs predicted
//           iteration time.
// Text from the plan is XML-escaped. Meant for a valid plan (validate()); size grows with
// devices + stages x micro-batches. Throws std::invalid_argument when sim has a different
// number of stages than the plan.
std::string plan_svg(const Plan& plan, const SimulationResult& sim);

// Text made safe for XML character data and attribute values: & < > " ' escaped; control
// characters other than tab, newline and carriage return (not allowed in XML 1.0) dropped.
std::string xml_escape(const std::string& text);

}  // namespace strata::solver
