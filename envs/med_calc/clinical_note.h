// The clinical note of a med_calc task, written in prose from a Patient:
// presenting complaint, past history (every condition the patient has, and
// the pertinent negatives of the calculator asked about), the symptoms and
// signs that calculator reads, mental status described by the Glasgow Coma
// Scale's components, vital signs, body size, the ECG's QT interval and a
// laboratory panel. Numbers are printed at the precision the Patient holds
// them, so the note states exactly the values the ground truth uses.
#pragma once

#include <string>

#include "envs/med_calc/calculators.h"
#include "envs/med_calc/patient.h"

namespace clinrl::envs::med_calc {

std::string WriteNote(const Patient& p, Calculator c);

}  // namespace clinrl::envs::med_calc
