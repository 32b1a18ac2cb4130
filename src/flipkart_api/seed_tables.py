"""The demo catalog's tables: the category tree, and per leaf category what products look like.

Pure data (and the compact-spec reader that builds it); seed_data.py turns it into products.
"""

from __future__ import annotations

import math
from typing import NamedTuple

TREE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Electronics", ("Mobiles", "Laptops", "Audio", "Televisions", "Cameras")),
    ("Fashion", ("Men", "Women", "Footwear", "Watches")),
    ("Home & Kitchen", ("Kitchen Appliances", "Furniture", "Home Decor")),
    ("Books", ("Fiction", "Non-fiction", "Academic")),
    ("Beauty", ("Skincare", "Makeup", "Haircare")),
    ("Sports & Fitness", ()),
    ("Toys", ()),
)


class Leaf(NamedTuple):
    """Generation table for one leaf category (prices in whole rupees)."""

    slug: str
    lo: int
    log_span: float  # log(hi / lo): prices are log-uniform, so cheap items dominate
    brands: tuple[tuple[str, tuple[str, ...]], ...]  # (brand, its model series)
    name: str  # str.format template over brand, series, a, b, c and colour
    a: tuple[str, ...]
    b: tuple[str, ...]
    c: tuple[str, ...]
    colours: tuple[str, ...]
    features: tuple[str, ...]  # description sentences, same template fields as name


def _leaf(slug: str, lo: int, hi: int, brands: str, name: str, *lists: str) -> Leaf:
    """Build a leaf from compact specs: ``Brand=Series,Series|Brand`` and ``x|y|z`` lists."""
    pairs = (part.partition("=") for part in brands.split("|"))
    a, b, c, colours, features = (tuple(spec.split("|")) for spec in lists)
    brand_series = tuple((brand, tuple(series.split(","))) for brand, _, series in pairs)
    return Leaf(slug, lo, math.log(hi / lo), brand_series, name, a, b, c, colours, features)


_PHONE = "Midnight Black|Moonlight Blue|Icy Silver|Forest Green|Lavender|Titanium Grey"
_APPAREL = "Navy Blue|White|Black|Maroon|Olive|Beige|Sky Blue|Mustard|Pink|Grey"
_BASIC = "Black|White|Silver|Grey|Blue|Red|Green"

# Per leaf: slug, price range in rupees, brands (with model series where names need them),
# name template, lists a/b/c/colours ("" when unused) and description sentences.
# fmt: off
LEAF_TABLES = (
    _leaf("mobiles", 6999, 149999, "Samsung=Galaxy M35,Galaxy M15,Galaxy A55,Galaxy S24|"
          "Apple=iPhone 14,iPhone 15,iPhone 16|Xiaomi=Redmi Note 13,Redmi 13C,Xiaomi 14|"
          "Realme=Narzo 70,12 Pro,C65|OnePlus=Nord CE4,12R|Vivo=T3,Y28,V30|Oppo=Reno12,A79,F27|"
          "Motorola=Moto G64,Edge 50 Fusion|Nothing=Phone (2a),Phone (2)|iQOO=Z9,Neo 9 Pro",
          "{brand} {series} 5G ({colour}, {a}) ({b} RAM)", "64 GB|128 GB|256 GB|512 GB",
          "4 GB|6 GB|8 GB|12 GB", "", _PHONE, "5G smartphone with {a} storage and a 50 MP AI "
          "camera.|Features a 120 Hz AMOLED display and a 5000 mAh battery with fast charging."
          "|Dual SIM 5G phone with NFC, Wi-Fi 6 and Bluetooth 5.3."),
    _leaf("laptops", 24999, 249999, "HP=Pavilion 15,Victus 15,Envy x360|Dell=Inspiron 3520,"
          "Vostro 3430,XPS 13|Lenovo=IdeaPad Slim 3,ThinkPad E14,LOQ 15|ASUS=Vivobook 15,"
          "TUF Gaming F15,Zenbook 14|Acer=Aspire 7,Nitro V,Swift Go 14|Apple=MacBook Air M2,"
          "MacBook Pro M3|MSI=Modern 14,Thin GF63",
          "{brand} {series} Laptop ({b} RAM, {a} SSD, {colour})", "256 GB|512 GB|1 TB",
          "8 GB|16 GB|32 GB", "", "Natural Silver|Space Grey|Midnight|Graphite Black",
          "{b} RAM and {a} SSD storage for fast multitasking.|Full HD anti-glare display with a "
          "backlit keyboard and Wi-Fi 6.|Thin and light laptop with all-day battery life."),
    _leaf("audio", 499, 29999, "boAt=Rockerz 450 Bluetooth Headphones,Airdopes 141 True "
          "Wireless Earbuds,Stone 350 Bluetooth Speaker|JBL=Tune 520BT Bluetooth Headphones,"
          "Flip 6 Bluetooth Speaker|Sony=WH-CH520 Bluetooth Headphones,WF-C700N Noise "
          "Cancelling Earbuds|Noise=Buds VS104 True Wireless Earbuds|Sennheiser=HD 450BT "
          "Wireless Headphones,CX Plus True Wireless Earbuds",
          "{brand} {series} ({colour})", "", "", "",
          "Luscious Black|Pearl White|Aqua Blue|Cherry Red|Midnight Black|Beige",
          "Bluetooth 5.3 audio with deep bass and up to 40 hours of playback.|Built-in mic for "
          "calls and fast charging.|Lightweight design with IPX4 sweat and water resistance."),
    _leaf("televisions", 9999, 249999, "Samsung=Crystal 4K Vivid,Neo QLED|LG=UR75,NanoCell,"
          "OLED evo C3|Sony=Bravia 2,Bravia X75L|Xiaomi=X Pro,A Pro|TCL=P635,C755 QLED|Vu=GloLED",
          "{brand} {series} {a} {b} LED Smart TV",
          "80 cm (32 inch)|108 cm (43 inch)|126 cm (50 inch)|139 cm (55 inch)|164 cm (65 inch)",
          "HD Ready|Full HD|Ultra HD (4K)", "", "", "Dolby Audio with 20 W speakers and "
          "built-in Chromecast.|Streams Netflix, Prime Video and YouTube over Wi-Fi.|HDR10 "
          "picture with a bezel-less design and a voice remote."),
    _leaf("cameras", 3999, 299999, "Canon=EOS 1500D,EOS R50,EOS R10|Nikon=Z50,Z fc,D7500|"
          "Sony=Alpha ZV-E10,Alpha 7 IV|Fujifilm=X-T30 II,X-S20,Instax Mini 12|GoPro=HERO12 "
          "Black|Panasonic=Lumix G7", "{brand} {series} {a} ({colour})",
          "Camera Body|Camera with 18-55 mm Lens|Camera with Twin Lens Kit", "", "",
          "Black|Silver|Graphite", "24 MP sensor with 4K video recording and fast autofocus.|"
          "Wi-Fi and Bluetooth for instant sharing to your phone.|Compact, travel-friendly body."),
    _leaf("men", 299, 4999,
          "Allen Solly|Peter England|Levi's|Roadster|H&M|Van Heusen|U.S. Polo Assn.",
          "{brand} Men {a} {b} ({colour}, Size {c})", "Solid|Striped|Checked|Printed",
          "Slim Fit Cotton Casual Shirt|Regular Fit Formal Shirt|Polo Neck T-Shirt|Round Neck "
          "Cotton T-Shirt|Slim Fit Jeans|Regular Fit Chinos", "S|M|L|XL|XXL", _APPAREL,
          "Made from breathable cotton for all-day comfort.|Machine washable fabric that keeps "
          "its colour wash after wash.|Pairs well with chinos, jeans or shorts."),
    _leaf("women", 399, 9999, "Biba|W for Woman|Libas|H&M|Aurelia|Global Desi|Fabindia",
          "{brand} Women {a} {b} ({colour}, Size {c})",
          "Printed|Embroidered|Floral Print|Solid|Chikankari", "Cotton Straight Kurta|Anarkali "
          "Kurta Set|Rayon A-line Kurti|Georgette Maxi Dress|Silk Blend Saree|Palazzo Set",
          "XS|S|M|L|XL|XXL", _APPAREL, "Soft cotton and rayon fabric for daily and festive "
          "wear.|Comfortable regular fit.|Hand wash or gentle machine wash in cold water."),
    _leaf("footwear", 299, 14999, "Bata|Puma|Adidas|Campus|Red Tape|Sparx|Woodland|Skechers",
          "{brand} {a} {b} ({colour}, {c})", "Smash|Flex|Nova|Drift|Strike|Cruise|Glide",
          "Running Shoes For Men|Sneakers For Men|Casual Shoes For Men|Walking Shoes For Women|"
          "Sneakers For Women|Flip Flops For Men|Formal Shoes For Men",
          "UK 6|UK 7|UK 8|UK 9|UK 10|UK 11", _BASIC, "Lightweight EVA sole with a cushioned "
          "insole for all-day comfort.|Breathable mesh upper with an anti-skid rubber outsole."
          "|Ideal for running, walking and the gym."),
    _leaf("watches", 499, 29999, "Titan|Fastrack|Casio|Fossil|Timex|Noise|boAt|Fire-Boltt",
          "{brand} {a} {b} ({colour} Strap)", "Neo|Karishma|Edge|Vyb|Classic|Enticer|Ninja",
          "Analog Watch - For Men|Analog Watch - For Women|Digital Watch - For Boys|Smartwatch "
          "with Bluetooth Calling|Chronograph Watch - For Men", "",
          "Black|Brown|Silver|Rose Gold|Blue|Grey", "Water resistant case with a stainless "
          "steel back.|Scratch-resistant mineral glass.|Comes with a 1 year warranty."),
    _leaf("kitchen-appliances", 499, 19999,
          "Prestige|Philips|Bajaj|Pigeon|Butterfly|Havells|Morphy Richards|Usha",
          "{brand} {a} {b} {c}", "Iris|Rapid|Jet|Smart|Elite|Neo|Pro",
          "500 W|750 W|1000 W|1200 W|1500 W|2000 W", "Mixer Grinder|Juicer Mixer Grinder|"
          "Electric Kettle|Induction Cooktop|Air Fryer|Sandwich Maker|OTG Oven", "",
          "Stainless steel build made for everyday Indian cooking.|Overload protection and a "
          "2 year warranty.|ISI certified appliance with a shock-proof body."),
    _leaf("furniture", 999, 89999,
          "Wakefit|Nilkamal|Durian|Godrej Interio|Sleepyhead|HomeTown|Urban Ladder",
          "{brand} {a} {b} ({colour}, {c})", "Orion|Nova|Aria|Zeta|Luxe|Bolton",
          "Engineered Wood Study Table|Fabric 3 Seater Sofa|Sheesham Wood King Size Bed|"
          "Engineered Wood Wardrobe|Mesh Ergonomic Office Chair|Solid Wood Coffee Table",
          "DIY Assembly|Carpenter Assembly", "Walnut|Wenge|Teak|Grey|Beige|Black",
          "Termite-resistant wood with a matte laminate finish.|Free installation and a 1 year "
          "warranty.|Compact design for small apartments and home offices."),
    _leaf("home-decor", 149, 9999, "Home Centre|Ellementry|Story@Home|Solimo|Craftter|Ekam",
          "{brand} {a} {b} ({colour}, {c})", "Floral|Geometric|Abstract|Boho|Ethnic|Minimal",
          "Ceramic Vase|Wall Clock|Cotton Cushion Cover|Table Lamp|Polyester Door Curtain|"
          "Wall Painting|Scented Candle", "Pack of 1|Pack of 2|Set of 5",
          "Ivory|Teal|Mustard|Terracotta|Grey|Multicolor", "Adds a festive touch to living "
          "rooms and bedrooms.|Handcrafted by Indian artisans.|A thoughtful gift for Diwali."),
    _leaf("fiction", 149, 999, "Penguin|HarperCollins|Rupa|Westland|Bloomsbury|Hachette",
          "{a} {b} (English, Paperback, {c})",
          "The Silent|The Last|Midnight|Whispers of the|Beyond the|The Secret of the",
          "River|Monsoon|Mountain|Kingdom|Palace|Garden|Storm|Island", "Ruskin Bond|Amish "
          "Tripathi|Chetan Bhagat|Anita Nair|Ravinder Singh|Preeti Shenoy|Anuja Chauhan", "",
          "A gripping novel by {c}, published by {brand}.|A bestselling fiction paperback loved "
          "by readers across India.|Perfect for long journeys and gifting."),
    _leaf("non-fiction", 199, 1499, "Penguin|HarperCollins|Rupa|Westland|Jaico|Hay House",
          "{a} {b} (English, Paperback, {c})",
          "The Power of|Lessons in|The Art of|A Brief History of|The Psychology of",
          "Habits|Money|Leadership|India|Focus|Wealth|Mindfulness|Work", "Sudha Murty|"
          "Ramachandra Guha|Shashi Tharoor|Devdutt Pattanaik|Robin Sharma|Morgan Housel", "",
          "An insightful non-fiction book by {c}, published by {brand}.|Blends research with "
          "practical advice.|A must-read for students and professionals."),
    _leaf("academic", 149, 1499, "Arihant|S. Chand|McGraw Hill|Pearson|Oswaal|Disha|MTG",
          "{brand} {a} for {b} ({c} Edition)", "Objective Mathematics|Concepts of Physics|"
          "Organic Chemistry|Quantitative Aptitude|Indian Polity|Biology Question Bank",
          "JEE Main & Advanced|NEET|UPSC CSE|CBSE Class 12|GATE|SSC CGL|Bank PO", "2024|2025",
          "", "Covers the latest {b} syllabus with solved examples.|Includes previous year "
          "papers and chapter-wise mock tests.|Written by experienced faculty."),
    _leaf("skincare", 149, 1999,
          "Mamaearth|Nivea|The Derma Co|Minimalist|Cetaphil|Plum|Lakmé|Pond's",
          "{brand} {a} {b} ({c})",
          "Vitamin C|Niacinamide 10%|Hyaluronic Acid|Ubtan|Aloe Vera|Salicylic Acid 2%",
          "Face Wash|Face Serum|Moisturizer|Sunscreen SPF 50|Night Cream|Toner",
          "30 ml|50 ml|100 ml|150 ml|200 g", "", "Dermatologically tested for oily, dry and "
          "sensitive skin.|Paraben-free {a} formula for a healthy glow.|Lightweight, "
          "non-greasy texture that absorbs quickly."),
    _leaf("makeup", 99, 1999,
          "Lakmé|Maybelline New York|SUGAR|Nykaa Cosmetics|MARS|Swiss Beauty|Colorbar",
          "{brand} {a} {b} ({colour}, {c})", "9to5|Colossal|Matte Attack|Absolute|Fit Me|Iconic",
          "Liquid Lipstick|Kajal|Foundation|Compact Powder|Mascara|Eyeliner|Lip Gloss",
          "4 g|8 ml|30 ml|9 g", "Ruby Red|Nude Pink|Coffee Brown|Jet Black|Natural Beige|Mauve",
          "Long-lasting, smudge-proof and transfer-proof finish.|Enriched with vitamin E and "
          "suits all skin tones.|Cruelty-free and dermatologically tested."),
    _leaf("haircare", 99, 1499,
          "Dove|L'Oréal Paris|Head & Shoulders|Indulekha|Parachute|Mamaearth|Sunsilk|Tresemmé",
          "{brand} {a} {b} ({c})",
          "Onion|Argan Oil|Anti-Dandruff|Keratin Smooth|Hair Fall Rescue|Coconut|Bhringraj",
          "Shampoo|Conditioner|Hair Oil|Hair Mask|Hair Serum", "100 ml|180 ml|340 ml|650 ml|1 L",
          "", "Reduces hair fall and frizz for soft, shiny hair.|Sulphate-free formula for "
          "daily use.|Nourishes the scalp with natural oils and herbal extracts."),
    _leaf("sports-fitness", 199, 19999,
          "Nivia|Cosco|Yonex|SG|Boldfit|Strauss|Li-Ning|Kookaburra",
          "{brand} {a} {b} ({colour})", "Pro|Elite|Storm|Match|Flex|Power|Champion",
          "Football Size 5|Badminton Racquet|English Willow Cricket Bat|Yoga Mat 6 mm|"
          "Adjustable Dumbbell Set|Skipping Rope|Gym Gloves|Table Tennis Racket", "", _BASIC,
          "Durable build for training, practice and match play.|Sweat-resistant grip for home "
          "workouts and the gym.|Great for beginners and intermediate players."),
    _leaf("toys", 199, 14999, "Funskool|Hasbro|LEGO|Hot Wheels|Mattel|Fisher-Price|Hamleys",
          "{brand} {a} {b} for Kids ({c})", "Classic|Junior|Deluxe|City|Adventure|Creative",
          "Building Blocks Set|Remote Control Car|Board Game|Soft Teddy Bear|Doll House|Jigsaw "
          "Puzzle|Action Figure", "3+ Years|5+ Years|8+ Years|12+ Years", "",
          "Made from non-toxic, BIS-certified materials safe for children.|Builds creativity "
          "and problem solving.|A great birthday gift for boys and girls."),
)
# fmt: on
