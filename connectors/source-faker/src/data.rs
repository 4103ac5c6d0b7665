//! Word lists the generator draws from. Small, fixed and ordered: changing one changes every
//! record generated for a seed, so treat edits as a new output version.

pub const FIRST_NAMES: &[&str] = &[
    "Conception", "Earl", "Mikel", "Lilliana", "Antwan", "Marla", "Jerrold", "Hiroko", "Tyree",
    "Kasandra", "Ozell", "Bernardo", "Shanda", "Rigoberto", "Ilse", "Alonzo", "Merissa", "Dewitt",
    "Yuki", "Gaston", "Refugio", "Carmine", "Leandra", "Wilbur", "Nanette", "Osvaldo", "Priscila",
    "Quentin", "Rosalind", "Sebastian", "Tamika", "Ulysses", "Valentina", "Winfred", "Xiomara",
    "Yolanda", "Zachary", "Amelia", "Bartholomew", "Cordelia", "Desmond", "Eleanora", "Fitzgerald",
    "Genevieve", "Horatio", "Imogen", "Jasper", "Katarina", "Leopold", "Mirabel", "Nathaniel",
    "Ophelia", "Percival", "Rosamund", "Thaddeus", "Wilhelmina",
];

pub const TITLES: &[&str] = &[
    "Mr.", "Mrs.", "Ms.", "Miss", "Dr.", "DPhil", "PhD", "MD", "MSc", "Prof.", "Sir", "Madam",
];

pub const EMAIL_WORDS: &[&str] = &[
    "know", "beat", "pacific", "cooling", "simply", "marker", "charge", "window", "trouble",
    "clothes", "lighting", "bizarre", "compact", "derby", "hazard", "ideal", "journal", "kernel",
    "lawn", "mature", "nobody", "orbit", "plenty", "quote", "river", "solely", "tender", "upon",
];

pub const EMAIL_DOMAINS: &[&str] = &[
    "duck.com", "gmail.com", "yahoo.com", "outlook.com", "protonmail.com", "example.org",
    "mail.com", "icloud.com", "yandex.com", "zoho.com",
];

pub const GENDERS: &[&str] = &["Male", "Female", "Other", "Fluid"];

pub const LANGUAGES: &[&str] = &[
    "Croatian", "Portuguese", "English", "Spanish", "German", "French", "Dutch", "Italian",
    "Japanese", "Korean", "Mandarin", "Hindi", "Arabic", "Swahili", "Polish", "Czech", "Greek",
    "Turkish", "Finnish", "Hungarian", "Tamil", "Bengali", "Vietnamese", "Thai",
];

pub const ACADEMIC_DEGREES: &[&str] = &["Bachelor", "Master", "PhD"];

pub const NATIONALITIES: &[&str] = &[
    "Puerto Rican", "French", "German", "Japanese", "Brazilian", "Canadian", "Nigerian",
    "Indian", "Mexican", "Australian", "Swedish", "Egyptian", "Chilean", "Korean", "Irish",
    "Vietnamese", "Kenyan", "Polish", "Peruvian", "Norwegian", "Greek", "Thai", "Ghanaian",
];

pub const OCCUPATIONS: &[&str] = &[
    "Thermal Insulator", "IT Consultant", "Veterinary Surgeon", "Lifeguard", "Cartographer",
    "Tailor", "Actuary", "Baker", "Civil Engineer", "Dental Hygienist", "Electrician",
    "Florist", "Geologist", "Hotel Manager", "Interpreter", "Journalist", "Landscaper",
    "Machinist", "Nurse", "Optician", "Pharmacist", "Quantity Surveyor", "Radiographer",
    "Sommelier", "Teacher", "Upholsterer", "Welder", "Zoologist",
];

pub const BLOOD_TYPES: &[&str] = &["O+", "O−", "A+", "A−", "B+", "B−", "AB+", "AB−"];

pub const STREET_NAMES: &[&str] = &[
    "Koret", "Thomas More", "Maple", "Cedar", "Elm", "Juniper", "Lakeview", "Hillcrest",
    "Sunset", "Willow", "Harbor", "Ridge", "Meadow", "Orchard", "Canyon", "Prospect", "Beacon",
    "Chestnut", "Dogwood", "Fairview", "Grove", "Highland", "Ivy", "Jasmine",
];

pub const CITIES: &[&str] = &[
    "Savage", "Lynn", "Fairbanks", "Bend", "Ames", "Duluth", "Eugene", "Flagstaff", "Gary",
    "Helena", "Ithaca", "Joplin", "Kenosha", "Laramie", "Macon", "Norman", "Ogden", "Provo",
    "Quincy", "Reno", "Salem", "Tulsa", "Utica", "Vail", "Waco", "Yuma",
];

pub const STATES: &[&str] = &[
    "Wisconsin", "Oregon", "Alaska", "Iowa", "Minnesota", "Arizona", "Indiana", "Montana",
    "New York", "Missouri", "Wyoming", "Georgia", "Oklahoma", "Utah", "Illinois", "Nevada",
    "Texas", "Colorado", "Mississippi", "Vermont", "Maine", "Ohio",
];

pub const COUNTRY_CODES: &[&str] = &[
    "MX", "AW", "US", "CA", "FR", "DE", "JP", "BR", "IN", "NG", "AU", "SE", "EG", "CL", "KR",
    "IE", "VN", "KE", "PL", "PE", "NO", "GR", "TH", "GH", "NL", "ES", "IT", "PT",
];

/// (make, models)
pub const MAKES: &[(&str, &[&str])] = &[
    ("Mazda", &["MX-5", "CX-9", "RX-8", "Protege"]),
    ("Mercedes-Benz", &["C-Class", "E-Class", "SLK", "G-Class"]),
    ("Honda", &["Accord", "Civic", "Odyssey", "Prelude"]),
    ("Ford", &["Mustang", "F150", "Focus", "Ranger"]),
    ("Toyota", &["Corolla", "Camry", "Tacoma", "Supra"]),
    ("Volkswagen", &["Golf", "Passat", "Jetta", "Beetle"]),
    ("Subaru", &["Outback", "Impreza", "Forester", "Legacy"]),
    ("Kia", &["Soul", "Sorento", "Rio", "Sportage"]),
    ("Audi", &["A4", "Q5", "TT", "R8"]),
    ("Volvo", &["XC90", "V70", "S60", "240"]),
];
