"""The demo model's text domain: numbers, times, dates, commands and everyday sentences.

Every sentence comes as a pair: the *written* form is the transcript the model learns to write
(digits, ``7:30``, ``March 3``, capitals and final punctuation, as the real Qwen3-ASR writes),
the *spoken* form is what the speech synthesizer reads (numbers in words), so a clip's audio and
its transcript always agree whatever a TTS engine would make of digits.

English and German, from a word list of a few hundred words, so that a person can try it:
"Set a timer for 15 minutes.", "Weck mich um 7:30 auf."
"""

from __future__ import annotations

import random
from collections.abc import Callable

Sentence = tuple[str, str]  # (written, spoken)


def _w(words: str) -> list[str]:
    """A word list written as one string: split at "|" if it has one, else at spaces."""
    return words.split("|") if "|" in words else words.split()


# ---------------------------------------------------------------------------------------------
# Number words

_EN_ONES = _w(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
)
_EN_TENS = _w("_ _ twenty thirty forty fifty sixty seventy eighty ninety")
_EN_ORDINAL = _w(
    "_ first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth "
    "twentieth"
)
_EN_ORDINAL_TENS = {20: "twentieth", 30: "thirtieth"}

_DE_ONES = _w(
    "null eins zwei drei vier fünf sechs sieben acht neun zehn elf zwölf dreizehn vierzehn "
    "fünfzehn sechzehn siebzehn achtzehn neunzehn"
)
_DE_TENS = _w("_ _ zwanzig dreißig vierzig fünfzig sechzig siebzig achtzig neunzig")
_DE_ORDINAL = _w(
    "_ ersten zweiten dritten vierten fünften sechsten siebten achten neunten zehnten elften zwölften"
)


def english_number(n: int) -> str:
    if n < 20:
        return _EN_ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _EN_TENS[tens] + (f"-{_EN_ONES[ones]}" if ones else "")
    hundreds, rest = divmod(n, 100)
    return f"{_EN_ONES[hundreds]} hundred" + (f" {english_number(rest)}" if rest else "")


def english_ordinal(n: int) -> str:
    if n <= 20:
        return _EN_ORDINAL[n]
    tens, ones = divmod(n, 10)
    if not ones:
        return _EN_ORDINAL_TENS[n]
    return f"{_EN_TENS[tens]}-{_EN_ORDINAL[ones]}"


def german_number(n: int) -> str:
    if n < 20:
        return _DE_ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        if not ones:
            return _DE_TENS[tens]
        return ("ein" if ones == 1 else _DE_ONES[ones]) + "und" + _DE_TENS[tens]
    hundreds, rest = divmod(n, 100)
    head = "ein" if hundreds == 1 else _DE_ONES[hundreds]
    return f"{head}hundert" + (german_number(rest) if rest else "")


def german_ordinal(n: int) -> str:
    """Dative ordinals, as in "am dritten März"."""
    if n <= 12:
        return _DE_ORDINAL[n]
    return german_number(n) + ("ten" if n < 20 else "sten")


# ---------------------------------------------------------------------------------------------
# Word lists and templates. A slot is {name}; "n" slots are numbers, the others draw from WORDS.

MONTHS = {
    "English": "January February March April May June July August September October November December",
    "German": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
}

WORDS: dict[str, dict[str, list[str]]] = {
    "English": {
        "room": _w("kitchen|living room|bedroom|bathroom|office|garden|hallway|garage"),
        "device": _w("lights|heating|radio|television|fan|music|alarm|oven|coffee machine"),
        "unit": _w("minutes|seconds|hours|days"),
        "thing": _w(
            "apples|eggs|bananas|tomatoes|potatoes|oranges|bottles of water|cups of tea|"
            "pieces of bread|carrots|lemons|onions"
        ),
        "person": _w(
            "my mother|my father|my sister|my brother|the doctor|the office|my friend|Anna|Peter|Maria"
        ),
        "day": _w("Monday Tuesday Wednesday Thursday Friday Saturday Sunday"),
        "place": _w(
            "the station|the airport|the market|the library|the park|the school|the hospital|"
            "the city centre|the beach|the museum"
        ),
        "weather": _w("sunny|cold|warm|rainy|windy|cloudy|very hot|quite cool"),
        "food": _w("soup|pasta|rice|fish|salad|pizza|bread|cake|chicken|vegetables"),
        "subject": _w("I|we|they|my friends|the children|my neighbours|my parents|our guests"),
        "activity": _w(
            "go for a walk|play football|read a book|watch a film|visit the museum|cook dinner|"
            "clean the house|go shopping|call my family|work in the garden"
        ),
        "colour": _w("red blue green yellow black white"),
        "object": _w("door|window|car|bag|jacket|book|phone|key"),
    },
    "German": {
        "room": _w(
            "in der Küche|im Wohnzimmer|im Schlafzimmer|im Badezimmer|im Büro|im Garten|im Flur|in der Garage"
        ),
        "device": _w(
            "das Licht|die Heizung|das Radio|den Fernseher|den Ventilator|die Musik|den Wecker|"
            "die Kaffeemaschine"
        ),
        "unit": _w("Minuten|Sekunden|Stunden|Tage"),
        "thing": _w(
            "Äpfel|Eier|Bananen|Tomaten|Kartoffeln|Orangen|Flaschen Wasser|Tassen Tee|Karotten|Zitronen"
        ),
        "person": _w("meine Mutter|meinen Vater|meine Schwester|meinen Bruder|den Arzt|das Büro|Anna|Peter"),
        "day": _w("Montag Dienstag Mittwoch Donnerstag Freitag Samstag Sonntag"),
        "place": _w(
            "zum Bahnhof|zum Flughafen|zum Markt|zur Bibliothek|in den Park|zur Schule|"
            "ins Krankenhaus|in die Stadt|an den Strand|ins Museum"
        ),
        "weather": _w("sonnig|kalt|warm|regnerisch|windig|bewölkt|sehr heiß|ziemlich kühl"),
        "food": _w("Suppe|Nudeln|Reis|Fisch|Salat|Pizza|Brot|Kuchen|Hähnchen|Gemüse"),
        "subject": _w("wir|sie|meine Freunde|die Kinder|unsere Nachbarn|unsere Gäste"),
        "activity": _w(
            "spazieren gehen|Fußball spielen|ein Buch lesen|einen Film sehen|das Museum besuchen|"
            "das Abendessen kochen|einkaufen gehen|die Familie anrufen"
        ),
        "object": _w("die Tür|das Fenster|die Tasche|die Jacke|das Buch|die Lampe"),
        "mine": _w("mein Schlüssel|meine Tasche|mein Handy|meine Jacke|mein Buch|meine Brille"),
    },
}

# (template, final punctuation). Slots: {n} a number 1..99, {big} 100..999, {time}, {date}.
TEMPLATES: dict[str, list[str]] = {
    "English": [
        "Set a timer for {n} {unit}.",
        "Remind me in {n} {unit}.",
        "Add {n} {thing} to the shopping list.",
        "Turn the volume up to {n}.",
        "Set the temperature to {n} degrees.",
        "It costs {n} euros.",
        "The train leaves from platform {n}.",
        "There are {big} people in the hall.",
        "Room number {big}, please.",
        "Wake me up at {time}.",
        "The meeting starts at {time}.",
        "The bus comes at {time} on {day}.",
        "My birthday is on {date}.",
        "The concert is on {date} at {time}.",
        "Book a table for {n} on {date}.",
        "Turn on the {device} in the {room}.",
        "Turn off the {device} in the {room}.",
        "Switch off the {device}.",
        "Open the {object}.",
        "Close the {object}, please.",
        "Call {person}.",
        "Call {person} at {time}.",
        "Send a message to {person}.",
        "How do I get to {place}?",
        "Take me to {place}.",
        "What is the weather like on {day}?",
        "It will be {weather} on {day}.",
        "Is it {weather} today?",
        "We are having {food} for dinner.",
        "I would like some {food}, please.",
        "On {day} {subject} want to {activity}.",
        "Tomorrow {subject} will {activity}.",
        "Where is my {colour} {object}?",
        "I lost my {colour} {object} at {place}.",
        "Play some music in the {room}.",
        "Stop the music.",
        "What time is it?",
        "Good morning, how are you?",
        "Thank you very much.",
        "See you on {day}.",
    ],
    "German": [
        "Stelle einen Timer auf {n} {unit}.",
        "Erinnere mich in {n} {unit}.",
        "Setze {n} {thing} auf die Einkaufsliste.",
        "Stelle die Lautstärke auf {n}.",
        "Stelle die Temperatur auf {n} Grad.",
        "Das kostet {n} Euro.",
        "Der Zug fährt von Gleis {n}.",
        "Es sind {big} Leute im Saal.",
        "Zimmer Nummer {big}, bitte.",
        "Weck mich um {time} auf.",
        "Das Treffen beginnt um {time}.",
        "Der Bus kommt am {day} um {time}.",
        "Mein Geburtstag ist am {date}.",
        "Das Konzert ist am {date} um {time}.",
        "Reserviere einen Tisch für {n} am {date}.",
        "Schalte {device} {room} ein.",
        "Schalte {device} aus.",
        "Öffne {object}.",
        "Schließe {object}, bitte.",
        "Ruf {person} an.",
        "Ruf {person} um {time} an.",
        "Schicke eine Nachricht an {person}.",
        "Wie komme ich {place}?",
        "Bring mich {place}.",
        "Wie wird das Wetter am {day}?",
        "Am {day} wird es {weather}.",
        "Ist es heute {weather}?",
        "Heute gibt es {food} zum Abendessen.",
        "Ich hätte gern {food}, bitte.",
        "Am {day} wollen {subject} {activity}.",
        "Morgen wollen {subject} {activity}.",
        "Wo ist {mine}?",
        "Spiele Musik {room}.",
        "Stoppe die Musik.",
        "Wie spät ist es?",
        "Guten Morgen, wie geht es dir?",
        "Vielen Dank.",
        "Bis {day}.",
    ],
}


def _time(lang: str, rng: random.Random) -> Sentence:
    h, m = rng.randint(1, 12), rng.choice([0, 0, 5, 10, 15, 20, 30, 30, 40, 45, 50, rng.randint(1, 59)])
    written = f"{h}:{m:02d}"
    if lang == "English":
        if m == 0:
            return written, f"{english_number(h)} o'clock"
        minutes = f"oh {english_number(m)}" if m < 10 else english_number(m)
        return written, f"{english_number(h)} {minutes}"
    hour = "ein" if h == 1 else german_number(h)
    return written, f"{hour} Uhr" + (f" {german_number(m)}" if m else "")


def _date(lang: str, rng: random.Random) -> Sentence:
    month = MONTHS[lang].split()[rng.randrange(12)]
    day = rng.randint(1, 31)
    if lang == "English":
        return f"{month} {day}", f"{month} {english_ordinal(day)}"
    return f"{day}. {month}", f"{german_ordinal(day)} {month}"


def _number(lang: str, n: int) -> Sentence:
    return str(n), english_number(n) if lang == "English" else german_number(n)


def sentence(lang: str, rng: random.Random) -> Sentence:
    """One random sentence of ``lang`` (a key of TEMPLATES) as (written, spoken)."""
    template = rng.choice(TEMPLATES[lang])
    fillers: dict[str, Callable[[], Sentence]] = {
        "n": lambda: _number(lang, rng.randint(1, 99) if rng.random() < 0.9 else rng.randint(0, 9)),
        "big": lambda: _number(lang, rng.randint(100, 999)),
        "time": lambda: _time(lang, rng),
        "date": lambda: _date(lang, rng),
    }
    written, spoken = template, template
    while "{" in written:
        slot = written[written.index("{") + 1 : written.index("}")]
        if slot in fillers:
            w, s = fillers[slot]()
        else:
            w = s = rng.choice(WORDS[lang][slot])
        written = written.replace("{" + slot + "}", w, 1)
        spoken = spoken.replace("{" + slot + "}", s, 1)
    return written, spoken


def sentences(lang: str, count: int, seed: int) -> list[Sentence]:
    """``count`` distinct sentences (fewer if the domain runs out), reproducible from ``seed``."""
    rng = random.Random(f"{seed}-{lang}")
    seen: dict[str, Sentence] = {}
    for _ in range(count * 20):
        if len(seen) == count:
            break
        pair = sentence(lang, rng)
        seen.setdefault(pair[0], pair)
    return list(seen.values())
