// Each calculator against at least two cases worked by hand from the
// published formula or score sheet (the source is cited at each test; the
// arithmetic is in the comments), not against the code's own output.
#include "envs/med_calc/calculators.h"

#include <gtest/gtest.h>

namespace clinrl::envs::med_calc {
namespace {

using F = Finding;

Patient With(std::initializer_list<Finding> findings) {
  Patient p;
  for (Finding f : findings) p.Set(f);
  return p;
}

// Lip et al., Chest 2010;137:263-272: C 1, H 1, A2 (>= 75) 2, D 1, S2 2,
// V 1, A (65-74) 1, Sc (female) 1.
TEST(Calculators, Cha2ds2VascFollowsLip2010) {
  Patient woman = With({F::kHypertension, F::kDiabetes});
  woman.age = 78;
  woman.female = true;
  EXPECT_EQ(Cha2ds2Vasc(woman), 5);  // A2 2 + Sc 1 + H 1 + D 1
  Patient man = With({F::kHeartFailure, F::kStrokeOrTia, F::kVascularDisease});
  man.age = 70;
  EXPECT_EQ(Cha2ds2Vasc(man), 5);  // C 1 + S2 2 + V 1 + A 1
  Patient young;
  young.age = 60;
  EXPECT_EQ(Cha2ds2Vasc(young), 0);
  young.age = 64;
  young.female = true;
  EXPECT_EQ(Cha2ds2Vasc(young), 1);  // sex alone
}

// Pisters et al., Chest 2010;138:1093-1100: H (systolic > 160), A (renal:
// dialysis or creatinine >= 200 umol/L = 2.26 mg/dL; liver: cirrhosis), S,
// B, L, E (> 65), D (antiplatelet/NSAID; alcohol >= 8 drinks/week), 1 each.
TEST(Calculators, HasBledFollowsPisters2010) {
  Patient p = With({F::kAntiplateletOrNsaid});
  p.age = 70;
  p.systolic = 170;
  p.creatinine = 1.0;
  EXPECT_EQ(HasBled(p), 3);  // H + E + D(drugs)
  Patient q = With({F::kDialysis, F::kCirrhosis, F::kStrokeOrTia,
                    F::kPriorMajorBleeding, F::kLabileInr, F::kAlcoholExcess});
  q.age = 60;
  q.systolic = 160;          // not above 160
  EXPECT_EQ(HasBled(q), 6);  // A renal + A liver + S + B + L + D(alcohol)
  Patient r;
  r.age = 65;  // not above 65
  r.creatinine = 2.25;
  EXPECT_EQ(HasBled(r), 0);
  r.creatinine = 2.30;
  EXPECT_EQ(HasBled(r), 1);
}

// Inker et al., NEJM 2021;385:1737-1749: 142 x min(Scr/k, 1)^a x
// max(Scr/k, 1)^-1.200 x 0.9938^age x 1.012 [female]; k 0.7 (F) / 0.9 (M),
// a -0.241 (F) / -0.302 (M).
TEST(Calculators, CkdEpi2021FollowsInker2021) {
  Patient woman;
  woman.female = true;
  woman.age = 50;
  woman.creatinine = 0.9;
  // 0.9/0.7 = 1.285714; 1.285714^-1.2 = 0.739636; 0.9938^50 = 0.732725;
  // 142 x 0.739636 x 0.732725 x 1.012 = 77.88
  EXPECT_NEAR(CkdEpi2021(woman), 77.88, 0.01);
  Patient man;
  man.age = 60;
  man.creatinine = 0.7;
  // 0.7/0.9 = 0.777778; 0.777778^-0.302 = 1.078851; 0.9938^60 = 0.688573;
  // 142 x 1.078851 x 0.688573 = 105.48
  EXPECT_NEAR(CkdEpi2021(man), 105.48, 0.01);
}

// Cockcroft & Gault, Nephron 1976;16:31-41: (140 - age) x weight /
// (72 x Scr), x 0.85 for women.
TEST(Calculators, CockcroftGaultFollowsTheOriginalPaper) {
  Patient man;
  man.age = 60;
  man.weight_kg = 80;
  man.creatinine = 1.2;
  EXPECT_NEAR(CockcroftGault(man), 74.07, 0.01);  // 6400 / 86.4
  Patient woman;
  woman.female = true;
  woman.age = 40;
  woman.weight_kg = 60;
  woman.creatinine = 0.8;
  EXPECT_NEAR(CockcroftGault(woman), 88.54, 0.01);  // 0.85 x 6000 / 57.6
}

// Kim et al., NEJM 2008;359:1018-1026, UNOS/OPTN 2016 form: bounds Cr,
// bilirubin, INR >= 1, Cr <= 4 (4 on dialysis), Na 125-137; MELD(i) =
// 0.957 ln Cr + 0.378 ln bili + 1.120 ln INR + 0.643, rounded to the tenth,
// x 10; if > 11: + 1.32 (137 - Na) - 0.033 MELD (137 - Na).
TEST(Calculators, MeldNaFollowsKim2008WithTheUnosBounds) {
  Patient p;
  p.creatinine = 2.0;
  p.bilirubin = 3.0;
  p.inr = 1.5;
  p.sodium = 130;
  // 0.663346 + 0.415276 + 0.454123 + 0.643 = 2.1757 -> 2.2 -> 22;
  // 22 + 9.24 - 5.082 = 26.158 -> 26
  EXPECT_EQ(MeldNa(p), 26);
  Patient bounded;
  bounded.creatinine = 0.5;
  bounded.bilirubin = 0.6;
  bounded.inr = 0.9;
  bounded.sodium = 140;
  EXPECT_EQ(MeldNa(bounded), 6);  // all at 1: 0.643 -> 0.6 -> 6, no Na term
  Patient dialysis = With({F::kDialysis});
  dialysis.creatinine = 1.5;  // counted as 4.0
  dialysis.bilirubin = 1.0;
  dialysis.inr = 1.0;
  dialysis.sodium = 120;  // counted as 125
  // 0.957 ln 4 + 0.643 = 1.9697 -> 2.0 -> 20; 20 + 15.84 - 7.92 = 27.92
  EXPECT_EQ(MeldNa(dialysis), 28);
}

// Wells et al., Thromb Haemost 2000;83:416-420: DVT signs 3, PE most likely
// 3, HR > 100 1.5, immobilisation/surgery 1.5, previous DVT/PE 1.5,
// haemoptysis 1, malignancy 1.
TEST(Calculators, WellsPeFollowsWells2000) {
  Patient p = With({F::kDvtSigns, F::kHemoptysis});
  p.heart_rate = 110;
  EXPECT_DOUBLE_EQ(WellsPe(p), 5.5);
  Patient q = With({F::kPeMostLikely, F::kRecentSurgery, F::kPriorDvtOrPe,
                    F::kActiveCancer});
  q.heart_rate = 100;  // not above 100
  EXPECT_DOUBLE_EQ(WellsPe(q), 7.0);
  EXPECT_DOUBLE_EQ(WellsPe(Patient{}), 0.0);
}

// Lim et al., Thorax 2003;58:377-382: confusion, urea > 7 mmol/L (BUN > 19
// mg/dL), RR >= 30, SBP < 90 or DBP <= 60, age >= 65.
TEST(Calculators, Curb65FollowsLim2003) {
  Patient p;
  p.age = 70;
  p.gcs_verbal = 4;  // confused
  p.bun = 25;
  p.resp_rate = 32;
  p.systolic = 85;
  p.diastolic = 50;
  EXPECT_EQ(Curb65(p), 5);
  Patient q;
  q.age = 50;
  q.bun = 19;
  q.resp_rate = 29;
  q.systolic = 120;
  q.diastolic = 61;
  EXPECT_EQ(Curb65(q), 0);
  q.diastolic = 60;
  EXPECT_EQ(Curb65(q), 1);
}

// Seymour et al., JAMA 2016;315:762-774: RR >= 22, altered mentation,
// SBP <= 100.
TEST(Calculators, QsofaFollowsSeymour2016) {
  Patient p;
  p.resp_rate = 22;
  p.systolic = 100;
  p.gcs_eye = 3;  // GCS 14
  EXPECT_EQ(Qsofa(p), 3);
  Patient q;
  q.resp_rate = 21;
  q.systolic = 101;
  EXPECT_EQ(Qsofa(q), 0);
}

// Anion gap = Na - (Cl + HCO3) (e.g. Emmett & Narins, Medicine 1977).
TEST(Calculators, AnionGapIsSodiumMinusChlorideAndBicarbonate) {
  Patient p;
  p.sodium = 140;
  p.chloride = 104;
  p.bicarbonate = 24;
  EXPECT_DOUBLE_EQ(AnionGap(p), 12.0);
  p.sodium = 135;
  p.chloride = 100;
  p.bicarbonate = 10;
  EXPECT_DOUBLE_EQ(AnionGap(p), 25.0);
}

// Payne et al., BMJ 1973;4:643-646: + 0.02 mmol/L per g/L of albumin below
// 40 g/L, i.e. Ca + 0.8 x (4.0 - albumin g/dL) in mg/dL.
TEST(Calculators, CorrectedCalciumFollowsPayne1973) {
  Patient p;
  p.calcium = 8.0;
  p.albumin = 2.0;
  EXPECT_NEAR(CorrectedCalcium(p), 9.6, 1e-9);  // 8.0 + 0.8 x 2.0
  p.calcium = 10.0;
  p.albumin = 4.5;
  EXPECT_NEAR(CorrectedCalcium(p), 9.6, 1e-9);  // 10.0 - 0.8 x 0.5
}

// Bazett, Heart 1920;7:353-370: QTc = QT / sqrt(RR), RR = 60 / HR seconds.
TEST(Calculators, QtcFollowsBazett1920) {
  Patient p;
  p.qt_ms = 400;
  p.heart_rate = 60;  // RR 1 s
  EXPECT_NEAR(QtcBazett(p), 400.0, 1e-9);
  p.qt_ms = 360;
  p.heart_rate = 100;  // RR 0.6 s, sqrt 0.774597
  EXPECT_NEAR(QtcBazett(p), 464.76, 0.01);
}

// BMI = weight / height^2 (Quetelet; WHO).
TEST(Calculators, BmiIsWeightOverHeightSquared) {
  Patient p;
  p.weight_kg = 70;
  p.height_cm = 175;
  EXPECT_NEAR(Bmi(p), 22.857, 0.001);  // 70 / 3.0625
  p.weight_kg = 100;
  p.height_cm = 160;
  EXPECT_NEAR(Bmi(p), 39.0625, 1e-9);  // 100 / 2.56
}

// Mosteller, NEJM 1987;317:1098: sqrt(height cm x weight kg / 3600).
TEST(Calculators, BsaFollowsMosteller1987) {
  Patient p;
  p.height_cm = 180;
  p.weight_kg = 80;
  EXPECT_NEAR(BsaMosteller(p), 2.0, 1e-9);  // sqrt(14400 / 3600)
  p.height_cm = 160;
  p.weight_kg = 50;
  EXPECT_NEAR(BsaMosteller(p), 1.4907, 0.0001);  // sqrt(2.2222)
}

// MAP = (2 x DBP + SBP) / 3 (diastole two thirds of the cycle).
TEST(Calculators, MeanArterialPressureWeightsDiastoleTwice) {
  Patient p;
  p.systolic = 120;
  p.diastolic = 80;
  EXPECT_NEAR(MeanArterialPressure(p), 93.333, 0.001);  // 280 / 3
  p.systolic = 90;
  p.diastolic = 60;
  EXPECT_NEAR(MeanArterialPressure(p), 70.0, 1e-9);  // 210 / 3
}

// Blatchford et al., Lancet 2000;356:1318-1321: urea 6.5-8 / 8-10 / 10-25 /
// >= 25 mmol/L (BUN x 2.8 thresholds 18.2 / 22.4 / 28 / 70 mg/dL) 2/3/4/6;
// Hb men 12-13 1, 10-12 3, < 10 6; women 10-12 1, < 10 6; SBP 100-109 1,
// 90-99 2, < 90 3; pulse >= 100 1; melena 1; syncope 2; hepatic disease 2;
// cardiac failure 2.
TEST(Calculators, GlasgowBlatchfordFollowsBlatchford2000) {
  Patient man = With({F::kMelena});
  man.bun = 30;           // 4
  man.hemoglobin = 11.0;  // 3
  man.systolic = 95;      // 2
  man.heart_rate = 105;   // 1
  EXPECT_EQ(GlasgowBlatchford(man), 11);
  Patient woman = With({F::kSyncope, F::kCirrhosis, F::kHeartFailure});
  woman.female = true;
  woman.bun = 18;           // below 18.2: 0
  woman.hemoglobin = 11.5;  // 1
  woman.systolic = 115;
  woman.heart_rate = 80;
  EXPECT_EQ(GlasgowBlatchford(woman), 7);  // 1 + 2 + 2 + 2
  Patient worst;
  worst.bun = 70;          // 6
  worst.hemoglobin = 9.9;  // 6
  worst.systolic = 85;     // 3
  worst.heart_rate = 99;   // 0
  EXPECT_EQ(GlasgowBlatchford(worst), 15);
  worst.bun = 22;  // 2 instead of 6
  EXPECT_EQ(GlasgowBlatchford(worst), 11);
  worst.bun = 23;  // 3
  EXPECT_EQ(GlasgowBlatchford(worst), 12);
}

// McIsaac et al., CMAJ 1998;158:75-83: temperature > 38 C, no cough, tender
// swollen anterior cervical nodes, tonsillar swelling/exudate, 1 each; age
// 3-14 +1, 15-44 0, >= 45 -1.
TEST(Calculators, CentorMcIsaacFollowsMcIsaac1998) {
  Patient p = With({F::kTenderCervicalNodes, F::kTonsillarExudate});
  p.age = 30;
  p.temperature_c = 38.5;
  EXPECT_EQ(CentorMcIsaac(p), 4);
  Patient q = With({F::kCough});
  q.age = 50;
  q.temperature_c = 38.0;  // not above 38
  EXPECT_EQ(CentorMcIsaac(q), -1);
}

// Teasdale & Jennett, Lancet 1974;2:81-84: eye 1-4 + verbal 1-5 + motor 1-6.
TEST(Calculators, GlasgowComaScaleSumsTheThreeComponents) {
  Patient p;
  EXPECT_EQ(GlasgowComaScale(p), 15);
  p.gcs_eye = 2;
  p.gcs_verbal = 3;
  p.gcs_motor = 4;
  EXPECT_EQ(GlasgowComaScale(p), 9);
  p.gcs_eye = p.gcs_verbal = p.gcs_motor = 1;
  EXPECT_EQ(GlasgowComaScale(p), 3);
}

// Adrogue & Madias, NEJM 2000;342:1493-1499: TBW x (Na / 140 - 1), TBW
// fraction 0.6 men, 0.5 women and older men, 0.45 older women.
TEST(Calculators, FreeWaterDeficitFollowsAdrogueAndMadias2000) {
  Patient man;
  man.age = 40;
  man.weight_kg = 70;
  man.sodium = 154;
  EXPECT_NEAR(FreeWaterDeficit(man), 4.2, 1e-9);  // 42 x 0.1
  Patient woman;
  woman.female = true;
  woman.age = 70;
  woman.weight_kg = 60;
  woman.sodium = 160;
  EXPECT_NEAR(FreeWaterDeficit(woman), 3.857, 0.001);  // 27 x 20 / 140
}

TEST(Calculators, FormulaTruthIsRoundedToTwoDecimalsAndScoresAreExact) {
  Patient p;
  p.systolic = 120;
  p.diastolic = 80;
  EXPECT_DOUBLE_EQ(GroundTruth(Calculator::kMeanArterialPressure, p), 93.33);
  EXPECT_DOUBLE_EQ(GroundTruth(Calculator::kGlasgowComaScale, p), 15.0);
  EXPECT_EQ(CalculatorNames().size(), kNumCalculators);
  EXPECT_GE(kNumCalculators, 15u);
}

}  // namespace
}  // namespace clinrl::envs::med_calc
