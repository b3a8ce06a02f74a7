"""WonderTix: ticketing and box office for small theaters."""
