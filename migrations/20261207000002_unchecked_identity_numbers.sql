-- Portfolios opened with a typed identity number (no `identity_check` in the opening event), for the
-- export run's identity check (src/export/worker/identity_check.rs). Partial: once every number is
-- checked the index holds only the openings made while Ladok was unreachable.
CREATE INDEX events_portfolio_opened_unchecked ON events (position)
    WHERE event_type = 'PortfolioOpened' AND NOT (payload ? 'identity_check');
