"""Labelled lines for the lexicon tests (default lexicon): positives with the concept and the match
kind expected, and hard negatives that must never get an exact or morph flag.

Text is raw, as a recogniser might write it; the tests normalise it first, as the pipeline does.
Positives are (text, concept, kind); negatives are (text, concepts that must not be flagged).
PRIORS are (text, concept, expected prior reason or None for a plain prior of 1): forms one
sound-alike letter from a much commoner word and verb forms another common verb shares.
ASR_NEGATIVES are plain lines as Whisper base wrote them, with the concepts a loose fuzzy match
once flagged on them: they must get no flag of those concepts of any kind.
"""

POSITIVES = [
    # exact
    ("امشب برویم ببینیم پرنده است یا روباه", "bird", "exact"),
    ("امشب برویم ببینیم پرنده است یا روباه", "fox", "exact"),
    ("امشب برویم ببینیم پرنده است یا روباه", "tonight", "exact"),
    ("گرگ دیده شد", "wolf", "exact"),
    ("عقاب بالای تپه است", "eagle", "exact"),
    ("کبوتر رسید", "pigeon", "exact"),
    ("یک مار آنجاست", "snake", "exact"),
    ("گنجشک پرید", "sparrow", "exact"),
    ("مهمات را بیاورید", "ammunition", "exact"),
    ("مواد منفجره آماده است", "bomb", "exact"),
    ("ساعت صفر نزدیک است", "zero_hour", "exact"),
    ("عقب‌نشینی کنید", "retreat", "exact"),
    # Arabic letters, diacritics, kashida, ZWNJ as space: still exact after normalisation
    ("پَرَنده آمد", "bird", "exact"),
    ("روبـــاه رفت", "fox", "exact"),
    ("كبوتر رسيد", "pigeon", "exact"),
    ("عقب نشینی کنید", "retreat", "exact"),  # hazm re-joins the ZWNJ
    # morphology: plurals, indefinite, possessive, colloquial, ZWNJ / space / joined
    ("پرنده‌ها رفتند", "bird", "morph"),
    ("پرنده ها رفتند", "bird", "morph"),
    ("پرندهها رفتند", "bird", "morph"),
    ("پرندگان رسیدند", "bird", "morph"),
    ("یک پرنده‌ای دیدم", "bird", "morph"),
    ("روباه‌های زیادی", "fox", "morph"),
    ("روباهان آمدند", "fox", "morph"),
    ("روباهه فرار کرد", "fox", "morph"),
    ("روباهه فرار کرد", "flee", "exact"),
    ("گرگها نزدیکند", "wolf", "morph"),
    ("کبوترهایمان برگشتند", "pigeon", "morph"),
    ("کبوتر هایمان برگشتند", "pigeon", "morph"),
    ("آهوها کجا هستند", "deer", "morph"),
    ("عقاب‌هایش را دیدم", "eagle", "morph"),
    ("نارنجک‌ها را بردند", "grenade", "morph"),
    ("او را کشتند", "kill", "morph"),
    ("دارند می‌کشند", "kill", "morph"),
    ("دارند می کشند", "kill", "morph"),
    ("گریختند به سمت شمال", "flee", "morph"),
    # colloquial: plural ا, copula س/ست, ۀ as ezafe, object marker رو attached
    ("گرگا اومدن", "wolf", "morph"),
    ("گرگامون کجان", "wolf", "morph"),
    ("آهوا رفتن", "deer", "morph"),
    ("اون پرندس یا روباه", "bird", "morph"),
    ("این پرنده‌ست", "bird", "morph"),
    ("این پرنده ست", "bird", "morph"),
    ("آهوست", "deer", "morph"),
    ("پرندۀ کوچک آمد", "bird", "morph"),
    ("روباهرو دیدم", "fox", "morph"),
    ("روباه‌رو دیدم", "fox", "morph"),
    ("گرگارو دیدی", "wolf", "morph"),
    ("پرنده‌هارو بیار", "bird", "morph"),
    ("نارنجکا رو بیار", "grenade", "morph"),
    # fuzzy: what whisper base really wrote, and other recognition damage
    ("پرنده است یا رو دا", "fox", "fuzzy"),
    ("پرنده است یا رو دا", "bird", "exact"),
    ("پرنده است یا رو با", "fox", "fuzzy"),
    ("پرنده است یا رو با", "bird", "exact"),
    ("ببینیم پر اندی استیار رو با", "bird", "fuzzy"),
    ("ببینیم پر اندی استیار رو با", "fox", "fuzzy"),
    ("روبا رفت", "fox", "fuzzy"),
    ("گنج شک پرید", "sparrow", "fuzzy"),
    ("روبا ه رفت", "fox", "fuzzy"),
    ("گنجشگ پرید", "sparrow", "fuzzy"),
    ("عغاب بالای تپه", "eagle", "fuzzy"),
    # one letter off a 4-letter form (similarity 0.75) stands only beside a pattern partner
    ("پرنذه است یا روباه", "bird", "fuzzy"),
    # the source's line as Whisper base really wrote it: two loose hits raise each other
    ("امشن برامن ببیلین پرامده استیار رو گا", "bird", "fuzzy"),
    ("امشن برامن ببیلین پرامده استیار رو گا", "fox", "fuzzy"),
]

NEGATIVES = [
    ("پرونده را بیاور", {"bird"}),
    ("پرونده‌ها روی میز است", {"bird"}),
    ("پرده را بکش", {"bird"}),
    ("پرده‌های اتاق", {"bird"}),
    ("و پرده را باز کن", {"bird"}),
    ("روبرو بایستید", {"fox"}),
    ("روبه‌رو را نگاه کن", {"fox"}),
    ("روبروی ساختمان", {"fox"}),
    ("چای شیرین است", {"lion"}),
    ("شیرینی خریدم", {"lion"}),
    ("شیری رنگ بود", {"lion"}),
    ("مارش نظامی نواختند", {"snake"}),
    ("مارک این لباس چیست", {"snake"}),
    ("ماریا آمد", {"snake"}),
    ("گرگان شهر زیبایی است", set()),  # Gorgan (city) = wolves: a true ambiguity, not asserted
    ("کبود شده است", {"pigeon"}),
    ("زمین خیس است", {"landmine"}),
    ("مینا آمد", {"landmine"}),
    ("مرزبان آمد", {"border"}),
    ("سلام حال شما چطور است", {"bird", "fox", "lion", "snake", "wolf"}),
    ("فردا صبح می‌آیم", {"tomorrow_night"}),
    ("شبانه رفتند", {"tonight"}),
    # colloquial forms that spell another word
    ("مینای دندان", {"landmine"}),  # "enamel of the tooth", not landmine + plural ا
    ("مارا صدا کرد", {"snake"}),  # "ما را" ("us") written joined
    ("کشیدم", {"kill"}),  # "I drew": a form of کشید#کش only
    ("نقاشی کشیدند", {"kill"}),
]

PRIORS = [
    ("پرنده است یا روباه", "bird", None),
    ("او را کشتند", "kill", None),  # past stem کشت: only "kill" among hazm's common verbs
    ("کشتن", "kill", None),
    ("کفتار", "hyena", "sound_alike: گفتار"),
    ("کفتار امروز درباره کار بود", "hyena", "sound_alike: گفتار"),  # گفتار "speech" garbled
    ("کفتارها", "hyena", "sound_alike: گفتار"),
    ("سختی‌هایی که تو ایران می‌کشم", "kill", "shared_stem: کشید#کش"),  # "I endure"
    ("سیگار می‌کشد", "kill", "shared_stem: کشید#کش"),  # "he smokes"
    ("دارند می کشند", "kill", "shared_stem: کشید#کش"),
]

ASR_NEGATIVES = [
    ("اتنار باید کامدین", {"depot", "ambush"}),
    ("هم او بی داکر مرد آگا دی", {"checkpoint"}),
    ("پرنذه آمد", {"bird"}),  # a lone 0.75 hit: too loose without a partner
    ("رو با من بیا", {"fox"}),  # "on with me": split pieces that are short common words
]
