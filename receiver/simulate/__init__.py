"""Tools that play the payment providers' side: realistic payloads, signing, load, and a sandbox.

``tenrusl simulate`` sends signed deliveries (fresh, duplicated, tampered) to a receiver and
reports what it answered; ``tenrusl sign`` prints the headers for one body, for curl. The sandbox
fakes the two third-party APIs the receiver calls (PayPal, Amazon Buy with Prime), so both work
end to end on one machine.
"""
