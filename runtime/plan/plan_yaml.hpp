// plan.yaml (schema grey-plan/1, docs/plan.md): writing, reading with validation, and the JSON form.
#pragma once

#include "plan/plan.hpp"

#include <string>

namespace grey::plan {

inline constexpr const char* kPlanSchema = "grey-plan/1";

std::string plan_to_yaml(const Plan& plan);
std::string plan_to_json(const Plan& plan);
// GREY_ERROR_CONFIG listing every problem as "FILE:LINE: KEY: problem".
Plan read_plan_yaml(const std::string& path);

}  // namespace grey::plan
