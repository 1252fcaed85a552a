mod codec;
#[cfg(not(madsim))]
mod loopback;
#[cfg(madsim)]
mod simulated;
