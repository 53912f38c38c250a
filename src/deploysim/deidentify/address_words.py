"""Vocabulary of street addresses in several languages (used by ``addresses.py``)."""

from __future__ import annotations

from deploysim.deidentify.rules import words

#: street-type words written as separate words, matched in any case
STREET_WORDS: tuple[str, ...] = words(
    "street st str road rd avenue ave av avda avd boulevard blvd bd lane ln drive dr court ct courts "
    "way place pl square sq terrace ter close crescent cres parkway pkwy highway hwy circle cir trail "
    "trl alley row mews walk grove gardens green hill hills heights park path pike plaza point ridge "
    "run summit mall pass dale view vista loop expressway freeway turnpike junction landing manor "
    "meadows mill oval port station track valley villas wells estates crossing bypass causeway cove "
    "creek ford ferry fields flat flats gateway glen harbor harbour haven hollow island knoll lake "
    "lakes lodge orchard pines prairie ranch rapids shore shores spring springs spur stream trace "
    "village wharf rue chemin allée allee impasse quai route via viale piazza corso largo vicolo calle "
    "avenida carrera paseo camino rua travessa praça praca estrada straße strasse gasse weg platz ring "
    "damm ufer gate gata gatan vej vei veien vegen väg vägen gade katu tie kuja polku utca útja út tér "
    "körút köz ulica ul aleja al náměstí nábřeží třída laan straat plein gracht kade singel dreef steeg "
    "cesta trg ulitsa prospekt sokak caddesi cad odos leoforos tänav iela gatvė põik maantee puiestee "
    "kapu sor sétány rkp"
)
#: English types that may follow a bare name ("on Marina Fort Street")
ENGLISH_TYPES: tuple[str, ...] = words(
    "Street St. Road Rd. Avenue Ave. Boulevard Blvd. Lane Drive Court Way Place Terrace Crescent Close "
    "Square Highway Parkway"
)
#: street-type words that come before the name (``Rue Gafsa``, ``Via Roma``, ``ul. Długa``)
TYPE_FIRST_WORDS: tuple[str, ...] = words(
    "rue avenue av avda avd boulevard chemin allée allee impasse quai route via viale piazza corso "
    "largo vicolo calle avenida carrera paseo camino rua travessa praça praca estrada ulica ul aleja al "
    "odos leoforos plac c/"
)
#: endings of compound street names (``Wingertweg``, ``Koskikatu``, ``Hersnapvej``); endings that end
#: ordinary English words ("-ring", "-gate", "-gade") are left out
STREET_ENDINGS: tuple[str, ...] = words(
    "straße strasse gasse weg platz allee laan straat plein gracht vej veien vegen gata gatan vägen "
    "katu tie kuja polku utca iela gatvė tänav"
)
#: lower-case words that occur inside street and place names
PARTICLES: tuple[str, ...] = words(
    "de la del della delle dello dei degli de los las le les du des di da do dos das van der den ten "
    "ter von am an im auf el y e i z u"
)
UNIT_WORDS = r"(?:Apt|Apartment|Suite|Ste|Unit|Flat|Room|Rm|Floor|Fl|Box|P\.?\s?O\.?\s?Box|Bldg|Building|No)"
#: first words of short lines that end an address block (sign-offs and labels, not places)
NOT_ADDRESS_LINES = frozenset(
    words(
        "Regards Thanks Thank Sincerely Best Cheers Yours Love Kind Warm Hi Hello Dear Tel Phone Fax Email "
        "Mobile Cell Web Website Desk Name"
    )
)
