"""Every rate, share, lag and code list of the synthetic registers, in one place to tune.

Volumes are national figures for Norway (5.6 M residents, one year; sources.md "Volumes") and are
scaled by persons / NATIONAL_POPULATION. Rates "per person-year" apply to the eligible persons.
Code lists are plausible, not exhaustive: enough variety for the products to be interesting.
"""

from __future__ import annotations

NATIONAL_POPULATION = 5_600_000

SOURCES = ("freg", "msis", "msis_lab", "sysvak", "npr", "kpr", "mfr", "daar", "lmr")

# Events are simulated from WARMUP_DAYS before the first delivery so that registration lags are
# already in steady state on day one. Records delivered before the first day are dropped, except
# freg (its first delivery is the full population) and sysvak (its first delivery carries the
# history the products need, see vaccination.py).
WARMUP_DAYS = 10

# ---------------------------------------------------------------------------------------------
# Registration lags in days, as (values, probabilities): event date -> delivery date.
LAG = {
    "freg": ((0, 1, 2, 3), (0.4, 0.3, 0.2, 0.1)),
    "msis_lab": ((0, 1, 2, 3), (0.15, 0.5, 0.25, 0.1)),  # result registered after sampling
    "msis": ((0, 1, 2, 3, 4, 5), (0.3, 0.3, 0.15, 0.1, 0.1, 0.05)),  # after notification
    "sysvak": ((0, 1, 2, 3), (0.6, 0.25, 0.1, 0.05)),
    "npr": ((0, 1), (0.7, 0.3)),  # an episode enters the cumulative file on admission or next day
    "npr_discharge": ((0, 1, 2), (0.5, 0.35, 0.15)),  # discharge_date filled in after discharge
    "kpr": ((1, 2, 3, 4, 5, 6, 7), (0.25, 0.25, 0.2, 0.12, 0.08, 0.05, 0.05)),  # claims
    "lmr": ((0, 1, 2), (0.5, 0.35, 0.15)),
    "mfr": ((1, 2, 3, 4, 5, 6, 7), (0.1, 0.2, 0.2, 0.2, 0.15, 0.1, 0.05)),
    "daar": ((2, 3, 4, 5, 6, 7, 8, 9, 10), (0.1, 0.15, 0.15, 0.15, 0.15, 0.1, 0.1, 0.05, 0.05)),
}

# ---------------------------------------------------------------------------------------------
# Population (shares of `persons`, the number of residents drawn from the SSB table)
DNR_RESIDENT_SHARE = 0.004  # residents still on a D-number (status bosatt)
SYNTHETIC_ID_SHARE = 0.0005  # residents with Skatteetaten synthetic test numbers
DNR_NONRESIDENT_SHARE = 0.03  # D-numbers with status ikkeBosatt (workers, students)
HISTORIC_EMIGRATED_SHARE = 0.01
HISTORIC_DEAD_SHARE = 0.005
HISTORIC_MISSING_SHARE = 0.0003  # forsvunnet
FOREIGN_PATIENT_SHARE = 0.002  # pool of patients with H- or FH-numbers (NPR only, never in freg)
PAST_D_TO_F_SHARE = 0.01  # residents whose fnr replaced a D-number before the period
PAST_CORRECTION_SHARE = 0.0005
PAST_CHAIN_SHARE = 0.0002  # A (D-number) -> B (fnr) -> C (corrected fnr)
RISK_GROUP_SHARE_18_64 = 0.12  # medical risk groups (vaccination, hospitalisation)
RISK_GROUP_SHARE_0_17 = 0.03
NONRESIDENT_HEALTH_WEIGHT = 0.2  # ikkeBosatt D-number holders use health services less
OLD_ID_USE = 0.25  # chance that another register still uses a person's previous identifier

# Kommune codes as registered (per residence and per register record)
OLD_KOMMUNE_CODE_SHARE = 0.01  # a pre-2024 code that maps to the true 2024 kommune
UNKNOWN_KOMMUNE_SHARE = 0.002  # 9999
BOGUS_KOMMUNE_SHARE = 0.0002  # 4 digits no year's borders know
BOGUS_KOMMUNE_CODES = ("0000", "0199", "2399", "4999", "6543", "8888")
NONRESIDENT_UNKNOWN_KOMMUNE = 0.15  # ikkeBosatt persons registered on 9999

# ---------------------------------------------------------------------------------------------
# Demography (per person-year)
MOVE_RATE = 0.045  # to another kommune
LOCAL_MOVE_RATE = 0.08  # new address in the same kommune: a freg row with a new status_date
EMIGRATION_RATE = 0.0075
IMMIGRATION_RATE = 0.012  # new residents with a new fødselsnummer
NEW_DNR_RATE = 0.02  # new D-numbers issued (per resident)
D_TO_F_RATE = 0.15  # per D-number holder: gets a fødselsnummer (becomes or stays resident)
CORRECTION_RATE = 0.0002  # per person: a wrong identifier is corrected
CORRECTION_CHAIN_SHARE = 0.3  # corrections of identifiers that already replaced another one
MISSING_RATE = 0.00002  # forsvunnet
MALE_SHARE_AT_BIRTH = 0.513

BIRTHS_PER_YEAR = 52_000  # national, maternities x plurality
TWIN_SHARE = 0.016  # of maternities
STILLBIRTH_SHARE = 0.0035  # per child
MOTHER_AGE_MEAN, MOTHER_AGE_SD = 31.0, 5.0
GESTATION_MEAN, GESTATION_SD = 280, 9  # days
PRETERM_SHARE = 0.06  # gestational age 170-258 days
BIRTH_PLAN_AHEAD_DAYS = 200  # plan pregnancies ending this long after the period (vaccinations)

DEATHS_PER_YEAR = 45_000  # national; the age curve below is scaled to hit it
GOMPERTZ_A, GOMPERTZ_B = -11.08, 0.102  # annual mortality exp(A + B*age) from age 30
INFANT_MORTALITY, CHILD_MORTALITY = 0.0018, 0.0003
PLACE_OF_DEATH = (("sykehus", 0.32), ("sykehjem", 0.44), ("hjemme", 0.16), ("annet", 0.06), ("ukjent", 0.02))
DEATH_CAUSE_LATE_SHARE = 0.5  # first delivered with R99, cause follows days later
DEATH_CAUSE_DELAY = (3, 30)  # days between the first version and the coded cause
DEATH_SAME_DAY_UPDATE_SHARE = 0.03  # two versions inside one delivery (ordered by updated_at)
DEATH_CAUSES = (  # underlying cause, weight
    ("I219", 6), ("I251", 8), ("I500", 5), ("I639", 6), ("I64", 2), ("C349", 6), ("C189", 3),
    ("C509", 2), ("C61", 3), ("C259", 2), ("F03", 9), ("G309", 4), ("J440", 5), ("J189", 4),
    ("J960", 1), ("U071", 2), ("E149", 2), ("N189", 2), ("W19", 2), ("X599", 1), ("X42", 1),
    ("X70", 1), ("V892", 1), ("K746", 1), ("R54", 2),
)

# ---------------------------------------------------------------------------------------------
# Seasonality: factor = 1 + amplitude * cos(2 pi (day_of_year - peak) / 365.25)
SEASON = {
    "respiratory": (0.55, 20),
    "covid19": (0.6, 355),
    "influenza": (1.0, 40),
    "rsv": (0.95, 355),
    "pertussis": (0.2, 300),
    "summer": (0.5, 200),  # enteric infections
    "mortality": (0.12, 20),
    "flat": (0.0, 0),
}
# Monday..Sunday, relative
WEEKDAY = {
    "fastlege": (1.35, 1.2, 1.15, 1.15, 1.05, 0.05, 0.05),
    "legevakt": (0.85, 0.8, 0.8, 0.8, 0.9, 1.45, 1.4),
    "nettlege": (1.05, 1.0, 1.0, 1.0, 0.95, 1.0, 1.0),
    "pharmacy": (1.25, 1.15, 1.15, 1.15, 1.2, 0.55, 0.1),
    "lab": (1.2, 1.15, 1.1, 1.1, 1.05, 0.7, 0.6),
    "hospital": (1.15, 1.1, 1.1, 1.05, 1.0, 0.8, 0.8),
    "flat": (1, 1, 1, 1, 1, 1, 1),
}

# Age profiles: (upper age bound exclusive, relative weight) - piecewise constant over age
AGE_PROFILE = {
    "primary_care": ((1, 3.0), (5, 2.2), (18, 1.0), (45, 0.9), (65, 1.3), (80, 2.0), (106, 2.6)),
    "respiratory": ((1, 4.0), (5, 3.0), (18, 1.2), (45, 0.8), (65, 1.0), (80, 1.5), (106, 1.8)),
    "dispensing": ((5, 0.4), (18, 0.3), (45, 0.7), (65, 1.4), (80, 3.0), (106, 3.5)),
    "antibiotic": ((5, 1.6), (18, 0.9), (45, 0.9), (65, 1.0), (80, 1.4), (106, 1.8)),
    "lab_test": ((1, 2.0), (5, 1.6), (18, 0.6), (45, 0.9), (65, 1.0), (80, 1.6), (106, 2.2)),
    "inpatient": ((1, 2.0), (5, 0.8), (18, 0.3), (45, 0.5), (65, 1.0), (80, 2.6), (106, 4.0)),
    "sari": ((1, 6.0), (5, 2.0), (18, 0.15), (45, 0.2), (65, 0.7), (80, 2.8), (106, 5.0)),
    "outpatient": ((5, 0.6), (18, 0.6), (45, 0.8), (65, 1.2), (80, 1.6), (106, 1.4)),
    "young_adult": ((15, 0.0), (20, 1.0), (30, 2.2), (40, 1.3), (55, 0.6), (106, 0.15)),
    "adult": ((18, 0.15), (65, 1.0), (106, 0.6)),
    "child": ((5, 2.5), (15, 1.5), (18, 0.5), (106, 0.3)),
    "elderly": ((45, 0.2), (65, 0.8), (80, 2.0), (106, 3.0)),
    "everyone": ((106, 1.0),),
    "migrant": ((18, 0.3), (20, 0.8), (45, 1.8), (65, 0.5), (106, 0.1)),
}

# ---------------------------------------------------------------------------------------------
# MSIS cases: disease -> (national cases per year, season, age profile, share infected abroad)
MSIS_DISEASES = {
    "covid19": (38_000, "covid19", "elderly", 0.01),
    "pertussis": (3_000, "pertussis", "child", 0.02),
    "measles": (8, "flat", "child", 0.7),
    "mumps": (40, "flat", "young_adult", 0.3),
    "tuberculosis": (200, "flat", "migrant", 0.8),
    "campylobacteriosis": (4_500, "summer", "everyone", 0.35),
    "salmonellosis": (1_000, "summer", "everyone", 0.6),
    "legionellosis": (80, "summer", "elderly", 0.4),
    "gonorrhoea": (3_500, "flat", "young_adult", 0.2),
    "syphilis": (300, "flat", "young_adult", 0.35),
    "hepatitis_b": (500, "flat", "migrant", 0.7),
    "hiv": (200, "flat", "young_adult", 0.5),
    "meningococcal_disease": (20, "respiratory", "young_adult", 0.15),
    "invasive_pneumococcal_disease": (650, "respiratory", "elderly", 0.03),
}
MSIS_SAMPLING_EMPTY_SHARE = 0.05
MSIS_DIAGNOSIS_DELAY = ((0, 1, 2, 3), (0.4, 0.35, 0.15, 0.1))  # sampling -> diagnosis
MSIS_NOTIFICATION_DELAY = ((0, 1, 2, 3, 4, 5), (0.3, 0.3, 0.2, 0.1, 0.05, 0.05))
MSIS_UPDATE_SHARE = 0.3  # cases that get a later version (1-14 days later)
MSIS_RETRACT_SHARE = 0.015
MSIS_SAME_DAY_UPDATE_SHARE = 0.02  # two versions inside one delivery

# ---------------------------------------------------------------------------------------------
# msis_lab: national tests per year, pathogen shares, positivity (base, season key)
LAB_TESTS_PER_YEAR = 8_000_000
LAB_PATHOGENS = {  # pathogen: (share of tests, base positivity, season key for positivity)
    "sars-cov-2": (0.45, 0.06, "covid19"),
    "influensa-a": (0.2, 0.05, "influenza"),
    "influensa-b": (0.12, 0.015, "influenza"),
    "rsv": (0.17, 0.04, "rsv"),
    "pertussis": (0.06, 0.02, "pertussis"),
}
LAB_METHODS = (("pcr", 0.8), ("antigen", 0.15), ("culture", 0.05))
LAB_INCONCLUSIVE_SHARE = 0.01
LAB_EMPTY_FNR_SHARE = 0.02  # results without an identity in the raw file
LAB_COUNT = 30  # laboratories: lab_id "LAB01".."LAB30"

# ---------------------------------------------------------------------------------------------
# SYSVAK
# Seasonal campaigns start 1 October; doses spread by a gamma curve (days after the start).
CAMPAIGN_START = (10, 1)  # month, day
CAMPAIGN_GAMMA = (2.2, 14.0)  # shape, scale (days): peak mid-October, tail into winter
SEASON_START = (9, 1)  # vaccination seasons start 1 September (domain.md)
INFLUENZA_UPTAKE = {"65+": 0.65, "risk": 0.42, "other_adult": 0.06, "risk_child": 0.3}
COVID_UPTAKE = {"65+": 0.45, "risk": 0.15, "other_adult": 0.01, "risk_child": 0.0}
INFLUENZA_CODES = (("J07BB02", 0.9), ("J07BB03", 0.1))  # campaigns: J07BB03 (nasal) for children only
COVID_CODES = (("J07BN01", 0.85), ("J07BX03", 0.15))
PNEUMOCOCCAL_65_PER_YEAR = 0.03  # 65+ getting a pneumococcal dose per year (with the campaign)
PNEUMOCOCCAL_CODES = (("J07AL02", 0.6), ("J07AL01", 0.4))
# Childhood programme: (ATC, age in days at the scheduled dose, dose number)
CHILDHOOD_SCHEDULE = (
    ("J07BH01", 42, 1),  # rotavirus 6 weeks
    ("J07BH01", 84, 2),
    ("J07CA09", 91, 1),  # DTaP-IPV-Hib-HepB 3 months
    ("J07AL02", 91, 1),  # pneumococcal conjugate
    ("J07CA09", 152, 2),
    ("J07AL02", 152, 2),
    ("J07CA09", 365, 3),
    ("J07AL02", 365, 3),
    ("J07BD52", 456, 1),  # MMR 15 months
    ("J07CA02", 7 * 365, 4),  # DTaP-IPV 7 years
    ("J07BD52", 7 * 365 + 30, 2),
    ("J07BM03", 12 * 365, 1),  # HPV
    ("J07CA02", 15 * 365 + 180, 5),  # dTap-IPV 10th grade
)
CHILDHOOD_UPTAKE = 0.95
CHILDHOOD_DELAY_MEAN = 12  # days after the scheduled age (exponential)
PREGNANCY_PERTUSSIS_UPTAKE = 0.6
PREGNANCY_PERTUSSIS_CODE = "J07CA02"
PREGNANCY_EARLY_DOSE_SHARE = 0.05  # given before the pregnancy window (tests the window edge)
SYSVAK_DELETE_SHARE = 0.004  # registrations withdrawn 1-14 days later
SYSVAK_UNKNOWN_DELETES_PER_YEAR = 400  # national: deletes of ids never delivered

# ---------------------------------------------------------------------------------------------
# NPR
NPR_EPISODES_PER_YEAR = 10_000_000
NPR_CARE_LEVEL_SHARE = (("1", 0.12), ("2", 0.08), ("3", 0.80))
NPR_EMERGENCY_SHARE = {"1": 0.68, "2": 0.05, "3": 0.08}
NPR_ICU_SHARE = 0.05  # of inpatient episodes; SARI episodes use NPR_SARI_ICU_SHARE
NPR_SARI_ICU_SHARE = 0.09
NPR_SARI_SHARE = 0.10  # of emergency inpatient episodes, times the respiratory season
NPR_LENGTH_OF_STAY_MEAN = 4.2  # days, inpatient (geometric)
NPR_CORRECTION_SHARE = 0.03  # episodes whose diagnosis is corrected 1-20 days after admission
NPR_DELETE_SHARE = 0.003  # episodes deleted 1-30 days after they appeared
NPR_FOREIGN_SHARE = 0.005  # episodes of patients with H- or FH-numbers
NPR_SECONDARY_COUNT = ((0, 0.45), (1, 0.3), (2, 0.15), (3, 0.1))
SARI_DIAGNOSES = (  # main diagnosis, weight, pathogen suggested by the code ('' = any)
    ("J189", 30, ""), ("J159", 5, ""), ("J22", 10, ""), ("J09", 1, "influensa-a"),
    ("J101", 8, "influensa-a"), ("J100", 3, "influensa-b"), ("J111", 3, ""),
    ("J121", 6, "rsv"), ("J210", 6, "rsv"), ("J205", 3, "rsv"), ("J129", 3, ""),
    ("J13", 3, ""), ("J181", 3, ""), ("U071", 15, "sars-cov-2"),
)
SARI_LAB_CONFIRMED_SHARE = 0.6  # SARI episodes with a positive test around admission
SARI_LAB_MULTIPLE_SHARE = 0.06  # of confirmed: a second pathogen too
SARI_LAB_OFFSETS = ((-14, -10, -7, -5, -3, -2, -1, 0, 1, 2, 3, -20, 6),
                    (0.01, 0.02, 0.03, 0.04, 0.06, 0.1, 0.2, 0.35, 0.1, 0.04, 0.02, 0.015, 0.015))
INPATIENT_DIAGNOSES = (
    ("I219", 6), ("I500", 6), ("I639", 5), ("I480", 4), ("S720", 4), ("K358", 3), ("N390", 4),
    ("J441", 5), ("C349", 3), ("C509", 2), ("O800", 6), ("O829", 2), ("Z380", 4), ("K802", 2),
    ("A419", 3), ("F329", 2), ("E119", 2), ("R074", 4), ("R55", 2), ("T810", 1), ("M170", 3),
)
OUTPATIENT_DIAGNOSES = (
    ("Z098", 10), ("Z511", 6), ("M170", 4), ("M545", 5), ("H251", 4), ("E119", 4), ("I109", 3),
    ("C509", 3), ("F329", 5), ("F412", 3), ("K219", 2), ("L405", 2), ("N400", 2), ("Z011", 4),
    ("R104", 3), ("S610", 2), ("J304", 2), ("J450", 3), ("Z348", 3), ("D509", 2), ("G439", 2),
)
SECONDARY_DIAGNOSES = (
    ("I109", 8), ("E119", 6), ("E669", 4), ("J449", 4), ("I489", 4), ("N183", 3), ("F179", 3),
    ("Z921", 2), ("E785", 3), ("D649", 2), ("B972", 1), ("B348", 1), ("U071", 1), ("Z290", 1),
)
DIAGNOSIS_CORRECTIONS = {"J189": "J159", "J22": "J189", "R074": "I219", "R55": "I480", "Z098": "Z099"}
# Health trusts by fylke (2024). Names carry æøå so the windows-1252 encoding matters.
HEALTH_TRUSTS = {
    "03": (("Oslo universitetssykehus HF", 0.55), ("Lovisenberg Diakonale Sykehus", 0.2),
           ("Diakonhjemmet Sykehus", 0.15), ("Akershus universitetssykehus HF", 0.1)),
    "11": (("Helse Stavanger HF", 0.8), ("Helse Fonna HF", 0.2)),
    "15": (("Helse Møre og Romsdal HF", 1.0),),
    "18": (("Nordlandssykehuset HF", 0.65), ("Helgelandssykehuset HF", 0.35)),
    "31": (("Sykehuset Østfold HF", 1.0),),
    "32": (("Akershus universitetssykehus HF", 0.7), ("Vestre Viken HF", 0.2), ("Oslo universitetssykehus HF", 0.1)),
    "33": (("Vestre Viken HF", 0.9), ("Sykehuset Innlandet HF", 0.1)),
    "34": (("Sykehuset Innlandet HF", 1.0),),
    "39": (("Sykehuset i Vestfold HF", 1.0),),
    "40": (("Sykehuset Telemark HF", 1.0),),
    "42": (("Sørlandet sykehus HF", 1.0),),
    "46": (("Helse Bergen HF", 0.6), ("Helse Førde HF", 0.2), ("Helse Fonna HF", 0.2)),
    "50": (("St. Olavs hospital HF", 0.75), ("Helse Nord-Trøndelag HF", 0.25)),
    "55": (("Universitetssykehuset Nord-Norge HF", 1.0),),
    "56": (("Finnmarkssykehuset HF", 0.7), ("Universitetssykehuset Nord-Norge HF", 0.3)),
}

# ---------------------------------------------------------------------------------------------
# KPR claims
KPR_CLAIMS_PER_YEAR = 30_000_000
KPR_PRACTITIONER = (("fastlege", 0.76), ("legevakt", 0.12), ("nettlege", 0.12))
KPR_CONTACT_MODE = {
    "fastlege": (("oppmote", 0.62), ("telefon", 0.13), ("tekst", 0.15), ("video", 0.05), ("sykebesok", 0.05)),
    "legevakt": (("oppmote", 0.8), ("telefon", 0.17), ("sykebesok", 0.03)),
    "nettlege": (("video", 0.55), ("tekst", 0.45)),
}
KPR_TAKST = {  # contact mode -> tariff codes of the claim (first always, the rest sometimes)
    "oppmote": ("2ad", "2cd", "701a"),
    "telefon": ("1ad", "1bd"),
    "tekst": ("1be",),
    "video": ("2ae", "2cd"),
    "sykebesok": ("11ad", "2cd"),
}
KPR_RESPIRATORY_SHARE = {"fastlege": 0.13, "legevakt": 0.22, "nettlege": 0.25}  # x season
RESPIRATORY_ICPC2 = (  # code, weight, chance of a J01 dispensing 0-3 days later
    ("R74", 30, 0.08), ("R78", 8, 0.25), ("R81", 6, 0.75), ("R75", 8, 0.45), ("R76", 7, 0.55),
    ("R80", 8, 0.02), ("R05", 12, 0.04), ("R96", 5, 0.03), ("R991", 6, 0.0), ("R992", 4, 0.01),
    ("R72", 3, 0.6), ("R02", 3, 0.05),
)
OTHER_ICPC2 = (  # code, weight, chance of a J01 dispensing (urinary infections, skin)
    ("A97", 10, 0.0), ("K86", 8, 0.0), ("T90", 7, 0.0), ("P76", 7, 0.0), ("L03", 6, 0.0),
    ("L86", 5, 0.0), ("U71", 6, 0.7), ("S74", 3, 0.2), ("S76", 3, 0.3), ("D73", 3, 0.0),
    ("P74", 4, 0.0), ("A04", 4, 0.0), ("N01", 4, 0.0), ("K74", 2, 0.0), ("X76", 1, 0.0),
    ("A98", 6, 0.0), ("Z29", 2, 0.0), ("H71", 3, 0.5),
)
KPR_EXTRA_CODE_SHARE = 0.25  # claims with a second ICPC-2 code
ANTIBIOTIC_DAYS_AFTER = ((0, 1, 2, 3, 4, 6), (0.62, 0.2, 0.08, 0.04, 0.04, 0.02))  # 4+ outside window

# ---------------------------------------------------------------------------------------------
# LMR dispensings
LMR_DISPENSINGS_PER_YEAR = 45_000_000
# Background J01 dispensings not tied to a claim in the period (hospital discharge, dentists...)
LMR_BACKGROUND_J01_PER_YEAR = 1_200_000
J01_BY_ICPC2 = {  # antibiotic chosen for a contact's code (else J01_DEFAULT)
    "R81": (("J01CE02", 0.6), ("J01AA02", 0.25), ("J01FA09", 0.15)),
    "R76": (("J01CE02", 0.9), ("J01FA09", 0.1)),
    "R75": (("J01CE02", 0.7), ("J01AA02", 0.3)),
    "H71": (("J01CE02", 0.8), ("J01CA04", 0.2)),
    "U71": (("J01CA08", 0.5), ("J01XE01", 0.3), ("J01EA01", 0.2)),
}
J01_DEFAULT = (("J01CE02", 0.55), ("J01AA02", 0.2), ("J01CA04", 0.15), ("J01FA09", 0.05), ("J01DB01", 0.05))
J01_DDD_PER_PACKAGE = {"J01CE02": 6.7, "J01AA02": 10.0, "J01CA04": 7.0, "J01FA09": 7.0,
                       "J01DB01": 5.0, "J01CA08": 5.0, "J01XE01": 5.0, "J01EA01": 7.0}
OTHER_ATC = (  # ATC, weight, DDD per package
    ("C10AA05", 10, 30.0), ("C10AA01", 6, 28.0), ("C07AB02", 6, 30.0), ("C09CA01", 5, 98.0),
    ("C09AA05", 3, 100.0), ("N02BE01", 8, 10.0), ("A02BC01", 6, 28.0), ("N06AB06", 4, 30.0),
    ("N05CF01", 4, 30.0), ("R03AK06", 4, 60.0), ("R06AE07", 4, 30.0), ("H03AA01", 5, 100.0),
    ("B01AC06", 6, 98.0), ("B01AF01", 4, 28.0), ("A10BA02", 4, 50.0), ("G03AA07", 3, 84.0),
    ("N02AA59", 3, 10.0), ("M01AE01", 4, 20.0), ("D07AC01", 2, 15.0), ("S01AA01", 1, 5.0),
)
LMR_PRESCRIBER = (("fastlege", 0.72), ("sykehuslege", 0.14), ("legevakt", 0.04), ("nettlege", 0.04),
                  ("tannlege", 0.03), ("annen", 0.03))
LMR_PACKAGES = ((1, 0.75), (2, 0.18), (3, 0.07))

# ---------------------------------------------------------------------------------------------
# Bad input (row level). Names match the pipeline's quarantine reasons.
ROW_FAULT_KINDS = ("invalid_identifier", "missing_field", "bad_date", "future_date", "unknown_code",
                   "duplicate_row", "duplicate_id")
# Delivery-level faults, each present at least once whenever days >= 2 (and every 60 days)
DELIVERY_FAULT_KINDS = ("sha256_mismatch", "row_count_mismatch", "missing_column",
                        "undecodable_bytes", "unlisted_file", "missing_manifest")
DELIVERY_FAULT_EVERY_DAYS = 60
UNPARSABLE_DATES = ("2026-02-30", "05.01.2026", "20260105", "2026-13-01", "2026-1-5", "ukjent")
BAD_ICD10 = ("J18.9", "j189", "1234", "JXX", "J1899X")
BAD_ICPC2 = ("R7", "r74", "R-74", "RR74", "R7444")
BAD_ATC = ("J01C", "J01CE2", "j01ce02", "J01CE0211", "XYZ")
BAD_KOMMUNE = ("301", "03011", "O301", "X")
ROWS_PER_FILE = 1_000_000  # larger deliveries are split into part files
