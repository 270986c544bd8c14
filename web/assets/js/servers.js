// Servers page: placeholder until it is written.
