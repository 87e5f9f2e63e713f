//! Word lists shared by the parsers: job-title words, company suffixes,
//! places, degrees and institutions.

/// Words that make a phrase a job title (matched per word, lower case,
/// by prefix for the stems marked with a trailing `*`).
const TITLE_WORDS: &[&str] = &[
    "engineer*",
    "developer*",
    "manager*",
    "director*",
    "analyst*",
    "intern",
    "internship",
    "lead",
    "leader*",
    "consultant*",
    "designer*",
    "specialist*",
    "scientist*",
    "architect*",
    "administrator*",
    "officer*",
    "coordinator*",
    "assistant*",
    "associate*",
    "head",
    "vp",
    "vice",
    "president",
    "cto",
    "ceo",
    "cfo",
    "coo",
    "cio",
    "founder*",
    "co-founder*",
    "cofounder*",
    "accountant*",
    "nurse*",
    "teacher*",
    "tutor*",
    "lecturer*",
    "professor*",
    "researcher*",
    "technician*",
    "programmer*",
    "editor*",
    "writer*",
    "marketer*",
    "recruiter*",
    "representative*",
    "executive*",
    "advisor*",
    "adviser*",
    "owner",
    "partner",
    "principal",
    "staff",
    "senior",
    "junior",
    "sr",
    "jr",
    "supervisor*",
    "agent*",
    "clerk*",
    "cashier*",
    "driver*",
    "operator*",
    "strategist*",
    "tester*",
    "fellow*",
    "apprentice*",
    "trainee*",
    "volunteer*",
    "mentor*",
    "instructor*",
    "counsel",
    "attorney*",
    "lawyer*",
    "paralegal*",
    "pharmacist*",
    "physician*",
    "doctor",
    "therapist*",
    "auditor*",
    "controller*",
    "buyer*",
    "planner*",
    "producer*",
    "artist*",
    "photographer*",
    "secretary",
    "receptionist*",
    "chief",
    "sre",
    "devops",
    "qa",
    "swe",
    "sde",
    "member",
    "employee",
    "coach",
    "ninja",
    "expert*",
    "generalist*",
    "freelancer*",
    "contractor*",
    "barista*",
    "waiter*",
    "waitress*",
    "chef",
    "cook",
    "salesperson",
    "bookkeeper*",
    "economist*",
    "statistician*",
    "librarian*",
    "pilot*",
    "mechanic*",
    "electrician*",
    "surgeon*",
    "dentist*",
    "veterinarian*",
    "psychologist*",
    "journalist*",
    "translator*",
    "interpreter*",
    "curator*",
    "dean",
    "chair*",
    "postdoc*",
    "postdoctoral",
    "hacker",
    "evangelist*",
    "advocate*",
    "steward*",
    "captain",
];

/// Whether a phrase names a role ("Senior Software Engineer", "Head of Data").
pub(crate) fn has_title_word(phrase: &str) -> bool {
    phrase
        .split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .any(|w| {
            let w = w.to_lowercase();
            !w.is_empty()
                && TITLE_WORDS.iter().any(|t| match t.strip_suffix('*') {
                    // "engineer*" is not "engineering" (a field, or a company).
                    Some(stem) => w.starts_with(stem) && (w == stem || !w.ends_with("ing")),
                    None => w == *t,
                })
        })
}

const COMPANY_SUFFIXES: &[&str] = &[
    "inc",
    "inc.",
    "se",
    "kg",
    "spa",
    "s.p.a.",
    "oyj",
    "asa",
    "aps",
    "sarl",
    "llc",
    "llp",
    "ltd",
    "ltd.",
    "limited",
    "gmbh",
    "ag",
    "plc",
    "corp",
    "corp.",
    "corporation",
    "co",
    "co.",
    "company",
    "group",
    "labs",
    "lab",
    "technologies",
    "technology",
    "solutions",
    "systems",
    "bank",
    "agency",
    "studio",
    "studios",
    "s.a.",
    "sa",
    "s.l.",
    "sl",
    "bv",
    "b.v.",
    "nv",
    "oy",
    "ab",
    "as",
    "pty",
    "srl",
    "s.r.l.",
    "sas",
    "kk",
    "pvt",
    "holdings",
    "partners",
    "consulting",
    "software",
    "media",
    "networks",
    "industries",
    "international",
    "ventures",
    "capital",
    "health",
    "hospital",
    "foundation",
    "university",
    "college",
    "school",
    "institute",
    "council",
    "ministry",
    "department",
    "government",
    "ngo",
    "charity",
    "trust",
    "services",
    "digital",
    "analytics",
    "games",
    "energy",
    "motors",
    "airlines",
    "pharmaceuticals",
    "insurance",
    "logistics",
    "retail",
    "foods",
    "apparel",
];

/// Whether a phrase ends with (or contains) a company-like word.
pub(crate) fn has_company_word(phrase: &str) -> bool {
    phrase
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .any(|w| COMPANY_SUFFIXES.contains(&w.to_lowercase().as_str()))
}

/// A lone suffix field produced by splitting "Globex, Inc." on the comma.
pub(crate) fn is_company_suffix(field: &str) -> bool {
    matches!(
        field.trim().to_lowercase().as_str(),
        "inc"
            | "inc."
            | "llc"
            | "llp"
            | "ltd"
            | "ltd."
            | "gmbh"
            | "plc"
            | "corp"
            | "corp."
            | "co."
            | "s.a."
            | "ag"
            | "pty ltd"
            | "b.v."
    )
}

const US_STATES: &[&str] = &[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY",
    "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV",
    "WI", "WY", "DC", "ON", "QC", "BC", "AB", "MB", "NS", "NB", "SK", "NL", "PE",
];

const COUNTRIES: &[&str] = &[
    "usa",
    "us",
    "u.s.",
    "u.s.a.",
    "united states",
    "uk",
    "u.k.",
    "united kingdom",
    "england",
    "scotland",
    "wales",
    "ireland",
    "northern ireland",
    "canada",
    "mexico",
    "brazil",
    "argentina",
    "chile",
    "colombia",
    "peru",
    "spain",
    "españa",
    "portugal",
    "france",
    "germany",
    "deutschland",
    "italy",
    "italia",
    "netherlands",
    "the netherlands",
    "belgium",
    "switzerland",
    "austria",
    "poland",
    "czech republic",
    "czechia",
    "sweden",
    "norway",
    "denmark",
    "finland",
    "iceland",
    "estonia",
    "latvia",
    "lithuania",
    "ukraine",
    "romania",
    "bulgaria",
    "greece",
    "turkey",
    "türkiye",
    "israel",
    "egypt",
    "morocco",
    "nigeria",
    "ghana",
    "kenya",
    "south africa",
    "ethiopia",
    "uae",
    "united arab emirates",
    "saudi arabia",
    "qatar",
    "india",
    "pakistan",
    "bangladesh",
    "sri lanka",
    "nepal",
    "china",
    "hong kong",
    "taiwan",
    "japan",
    "south korea",
    "korea",
    "singapore",
    "malaysia",
    "indonesia",
    "philippines",
    "vietnam",
    "viet nam",
    "thailand",
    "australia",
    "new zealand",
    "russia",
    "hungary",
    "croatia",
    "serbia",
    "slovenia",
    "slovakia",
    "luxembourg",
    "cyprus",
    "malta",
    "uruguay",
    "venezuela",
    "costa rica",
    "puerto rico",
];

const CITIES: &[&str] = &[
    "london",
    "berlin",
    "paris",
    "new york",
    "new york city",
    "nyc",
    "san francisco",
    "seattle",
    "austin",
    "boston",
    "chicago",
    "toronto",
    "madrid",
    "barcelona",
    "dublin",
    "amsterdam",
    "munich",
    "münchen",
    "sydney",
    "melbourne",
    "singapore",
    "tokyo",
    "bangalore",
    "bengaluru",
    "mumbai",
    "delhi",
    "new delhi",
    "hyderabad",
    "pune",
    "chennai",
    "lagos",
    "nairobi",
    "são paulo",
    "sao paulo",
    "mexico city",
    "lisbon",
    "zurich",
    "zürich",
    "geneva",
    "stockholm",
    "copenhagen",
    "oslo",
    "helsinki",
    "warsaw",
    "kraków",
    "krakow",
    "prague",
    "vienna",
    "manchester",
    "edinburgh",
    "glasgow",
    "bristol",
    "cambridge",
    "oxford",
    "leeds",
    "birmingham",
    "los angeles",
    "denver",
    "atlanta",
    "portland",
    "vancouver",
    "montreal",
    "montréal",
    "hong kong",
    "shanghai",
    "beijing",
    "shenzhen",
    "seoul",
    "tel aviv",
    "dubai",
    "cape town",
    "johannesburg",
    "buenos aires",
    "bogotá",
    "bogota",
    "santiago",
    "lima",
    "milan",
    "milano",
    "rome",
    "roma",
    "hamburg",
    "frankfurt",
    "cologne",
    "köln",
    "brussels",
    "rotterdam",
    "utrecht",
    "valencia",
    "seville",
    "sevilla",
    "porto",
    "athens",
    "istanbul",
    "cairo",
    "accra",
    "kyiv",
    "kiev",
    "bucharest",
    "budapest",
    "riga",
    "tallinn",
    "vilnius",
    "reykjavik",
    "washington",
    "philadelphia",
    "miami",
    "dallas",
    "houston",
    "phoenix",
    "san diego",
    "san jose",
    "minneapolis",
    "detroit",
    "pittsburgh",
    "raleigh",
    "nashville",
    "salt lake city",
    "ottawa",
    "calgary",
    "auckland",
    "wellington",
    "brisbane",
    "perth",
    "kuala lumpur",
    "jakarta",
    "manila",
    "bangkok",
    "ho chi minh city",
    "hanoi",
    "taipei",
    "osaka",
    "moscow",
    "saint petersburg",
    "lyon",
    "marseille",
    "toulouse",
    "bordeaux",
    "nice",
    "lille",
    "gothenburg",
    "aarhus",
    "bergen",
    "tampere",
    "gdańsk",
    "wrocław",
    "brno",
    "graz",
    "basel",
    "lausanne",
    "belfast",
    "cork",
    "galway",
    "liverpool",
    "newcastle",
    "sheffield",
    "nottingham",
    "cardiff",
];

const WORK_MODES: &[&str] = &[
    "remote",
    "hybrid",
    "on-site",
    "onsite",
    "worldwide",
    "anywhere",
    "remote-first",
];

fn is_place_name(part: &str) -> bool {
    let lower = part.trim().trim_end_matches('.').to_lowercase();
    CITIES.contains(&lower.as_str()) || COUNTRIES.contains(&lower.as_str())
}

fn capitalised_words(part: &str, max: usize) -> bool {
    let words: Vec<&str> = part.split_whitespace().collect();
    !words.is_empty()
        && words.len() <= max
        && words.iter().all(|w| {
            let w = w.trim_matches(|c: char| c == '.' || c == '\'');
            w.chars().next().is_some_and(char::is_uppercase)
                || matches!(
                    w,
                    "de" | "del" | "la" | "le" | "am" | "upon" | "on" | "sur" | "do" | "da"
                )
        })
        && !part.chars().any(|c| c.is_ascii_digit())
}

/// Whether a phrase is a place: "Austin, TX", "Madrid, Spain", "London",
/// "Remote", "Berlin, Germany (Remote)".
pub(crate) fn is_location(phrase: &str) -> bool {
    let p = phrase
        .trim()
        .trim_matches(|c: char| matches!(c, '(' | ')' | '[' | ']' | '|' | '-' | '–' | '·' | '•'))
        .trim();
    if p.is_empty() || p.chars().count() > 60 {
        return false;
    }
    let lower = p.to_lowercase();
    if WORK_MODES.contains(&lower.as_str()) {
        return true;
    }
    // Drop a trailing "(Remote)".
    let p = match p.find('(') {
        Some(i)
            if WORK_MODES.contains(
                &p[i..]
                    .trim_matches(|c| c == '(' || c == ')')
                    .to_lowercase()
                    .as_str(),
            ) =>
        {
            p[..i].trim()
        }
        _ => p,
    };
    if is_place_name(p) {
        return true;
    }
    let Some((city, region)) = p.rsplit_once(',') else {
        return false;
    };
    let region = region.trim();
    let region_code = region.split_whitespace().next().unwrap_or("");
    let rest_is_zip = region
        .split_whitespace()
        .skip(1)
        .all(|w| w.chars().all(|c| c.is_ascii_alphanumeric()) && w.len() <= 7);
    let region_ok = (US_STATES.contains(&region_code) && rest_is_zip) || is_place_name(region);
    let city = city.trim();
    let city_ok = match city.rsplit_once(',') {
        Some((c, mid)) => capitalised_words(c, 4) && capitalised_words(mid, 3),
        None => capitalised_words(city, 4),
    };
    region_ok && city_ok
}

/// Employment-type words that are neither title nor employer.
pub(crate) fn is_noise_field(field: &str) -> bool {
    matches!(
        field.trim().to_lowercase().as_str(),
        "full-time"
            | "full time"
            | "part-time"
            | "part time"
            | "contract"
            | "freelance"
            | "permanent"
            | "temporary"
            | "internship"
            | "remote"
            | "hybrid"
            | "on-site"
            | "onsite"
            | "present"
            | "current"
            | "self-employed"
    )
}

const DEGREE_WORDS: &[&str] = &[
    "bachelor",
    "bachelors",
    "bachelor's",
    "master",
    "masters",
    "master's",
    "doctor",
    "doctorate",
    "phd",
    "ph.d",
    "ph.d.",
    "mba",
    "msc",
    "m.sc",
    "m.sc.",
    "bsc",
    "b.sc",
    "b.sc.",
    "b.s.",
    "b.a.",
    "m.s.",
    "m.a.",
    "beng",
    "meng",
    "b.eng",
    "m.eng",
    "b.eng.",
    "m.eng.",
    "llb",
    "llm",
    "bba",
    "bcom",
    "b.com",
    "mphil",
    "dphil",
    "b.tech",
    "btech",
    "m.tech",
    "mtech",
    "diploma",
    "associate",
    "associate's",
    "associates",
    "licenciatura",
    "grado",
    "máster",
    "diplom",
    "baccalaureate",
    "hnd",
    "gcse",
    "gcses",
    "a-levels",
    "a-level",
    "ged",
    "b.e.",
    "m.e.",
    "bfa",
    "mfa",
    "mph",
    "msw",
    "edd",
    "pharmd",
    "bsn",
    "msn",
    "abitur",
    "postgraduate",
    "undergraduate",
    "degree",
];

const SHORT_DEGREES: &[&str] = &[
    "BA", "BS", "MS", "MA", "MD", "JD", "AA", "AS", "BE", "ME", "MEng", "BEng", "MSc", "BSc",
];

/// Whether a phrase names a degree or qualification.
pub(crate) fn is_degree(phrase: &str) -> bool {
    let lower = phrase.to_lowercase();
    if lower.contains("high school") || lower.contains("a levels") {
        return true;
    }
    phrase.split_whitespace().any(|raw| {
        let w = raw.trim_matches(|c: char| matches!(c, ',' | '(' | ')' | ':' | ';'));
        let lw = w.to_lowercase();
        DEGREE_WORDS.contains(&lw.as_str())
            || DEGREE_WORDS.contains(&lw.trim_end_matches('.'))
            || SHORT_DEGREES.contains(&w.trim_end_matches('.').replace('.', "").as_str())
    })
}

const INSTITUTION_WORDS: &[&str] = &[
    "university",
    "college",
    "institute",
    "institut",
    "school",
    "academy",
    "polytechnic",
    "politecnico",
    "universidad",
    "université",
    "universite",
    "universität",
    "universitat",
    "università",
    "universiteit",
    "universidade",
    "uniwersytet",
    "hochschule",
    "conservatory",
    "conservatoire",
    "seminary",
    "escuela",
    "école",
    "ecole",
    "gymnasium",
    "lycée",
    "lycee",
    "faculty",
    "centre",
    "center",
];

const INSTITUTION_ACRONYMS: &[&str] = &[
    "MIT", "UCLA", "NYU", "EPFL", "ETH", "LSE", "KTH", "UCL", "IIT", "CMU", "USC", "UCSD", "UBC",
    "TU", "KU", "UNAM", "ITAM", "INSEAD", "HEC", "ESADE", "IE", "NUS", "NTU", "HKUST",
];

/// Whether a phrase names a school or university.
pub(crate) fn is_institution(phrase: &str) -> bool {
    phrase
        .split(|c: char| c.is_whitespace() || c == ',')
        .any(|w| {
            let lw = w.to_lowercase();
            INSTITUTION_WORDS.contains(&lw.as_str())
                || lw.starts_with("univ")
                || INSTITUTION_ACRONYMS.contains(&w.trim_matches(|c: char| !c.is_alphanumeric()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert!(has_title_word("Senior Software Engineer"));
        assert!(has_title_word("Head of Data"));
        assert!(!has_title_word("Acme Corp"));
        assert!(has_company_word("Acme Corp"));
        assert!(is_location("Austin, TX"));
        assert!(is_location("Austin, TX 78701"));
        assert!(is_location("Madrid, Spain"));
        assert!(is_location("London"));
        assert!(is_location("Remote"));
        assert!(is_location("Berlin, Germany (Remote)"));
        assert!(is_location("San Francisco, CA"));
        assert!(!is_location("Acme Corp"));
        assert!(!is_location("Python, Go"));
        assert!(is_degree("BSc Computer Science"));
        assert!(is_degree("B.S. in Mathematics"));
        assert!(is_degree("Master of Science"));
        assert!(!is_degree("Basic skills"));
        assert!(is_institution("Universidad Politécnica de Madrid"));
        assert!(is_institution("MIT"));
        assert!(!is_institution("Acme Corp"));
    }
}
