//! The tracker's [`CourierDirectory`] on the dispatcher's own state: in `dispatcher demo` there
//! is no `devices` table to read, and the core already knows every courier and device (kept
//! current by every commit), so lookups are answered from it without I/O.

use futures::future::BoxFuture;
use optimizer::model::CourierId;
use tracker::directory::{CourierDirectory, CourierInfo, LookupError};

use crate::dispatch::Dispatch;
use crate::records::CourierRecord;

/// Couriers and devices as [`Dispatch`] holds them.
#[derive(Clone)]
pub struct DispatchDirectory {
    /// The core whose state is read.
    dispatch: Dispatch,
}

impl DispatchDirectory {
    /// A directory over `dispatch`.
    pub fn new(dispatch: Dispatch) -> Self {
        DispatchDirectory { dispatch }
    }
}

fn info(courier: &CourierRecord) -> CourierInfo {
    CourierInfo {
        courier_id: courier.id.clone(),
        vehicle: courier.vehicle,
    }
}

impl CourierDirectory for DispatchDirectory {
    fn by_device<'a>(
        &'a self,
        device_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<CourierInfo>, LookupError>> {
        let found = self
            .dispatch
            .read(|s| s.courier_by_device(device_id).map(info));
        Box::pin(async move { Ok(found) })
    }

    fn by_courier<'a>(
        &'a self,
        courier_id: &'a CourierId,
    ) -> BoxFuture<'a, Result<Option<CourierInfo>, LookupError>> {
        let found = self.dispatch.read(|s| s.courier(courier_id).map(info));
        Box::pin(async move { Ok(found) })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use optimizer::model::VehicleKind;

    use super::*;
    use crate::dispatch::NewCourier;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn devices_and_couriers_are_found_in_the_dispatch_state() {
        let dispatch = Dispatch::load(Arc::new(MemoryStore::new())).await.unwrap();
        let directory = DispatchDirectory::new(dispatch.clone());
        assert_eq!(directory.by_device("phone-1").await.unwrap(), None);
        let courier = dispatch
            .register_courier(NewCourier {
                name: "Ada".into(),
                vehicle: VehicleKind::Bike,
                device_id: "phone-1".into(),
                capacity: None,
            })
            .await
            .unwrap();
        let found = directory.by_device("phone-1").await.unwrap().unwrap();
        assert_eq!(found.courier_id, courier.id);
        assert_eq!(found.vehicle, VehicleKind::Bike);
        assert_eq!(
            directory.by_courier(&courier.id).await.unwrap(),
            Some(found)
        );
        assert_eq!(directory.by_device("phone-2").await.unwrap(), None);
    }
}
