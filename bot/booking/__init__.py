"""Booking a call with a sales manager before a deal: free slots in the business hours of ``company.yml``, the
manager's calendar (Google Calendar or any CalDAV server, :mod:`bot.booking.base` for a new one) and the customer's
iCalendar invitation by e-mail. Actions call :mod:`bot.booking.bookings` (``offer``, ``book``, ``reschedule``,
``cancel``, ``current``)."""
