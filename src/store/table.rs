//! [`Table`]: one kind of config record by id, as a persistent ordered map.
//!
//! Cloning a table is O(1) and a change copies only the path to the changed entry, so a config
//! write costs what it changes, not the size of the store: the committed state and every
//! published snapshot share all unchanged records.

use std::borrow::Borrow;

type Inner<V> = rpds::RedBlackTreeMapSync<String, V>;

#[derive(Clone, PartialEq)]
pub struct Table<V> {
    map: Inner<V>,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Self {
            map: Inner::new_sync(),
        }
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for Table<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V> Table<V> {
    #[must_use]
    pub fn get<Q>(&self, id: &Q) -> Option<&V>
    where
        String: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.get(id)
    }

    #[must_use]
    pub fn contains_key<Q>(&self, id: &Q) -> bool
    where
        String: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.contains_key(id)
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.map.size()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// In id order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&String, &V)> + '_ {
        self.map.iter()
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + '_ {
        self.map.keys()
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + '_ {
        self.map.values()
    }

    /// Insert or replace.
    pub fn insert(&mut self, id: String, value: V) {
        self.map.insert_mut(id, value);
    }

    /// Whether something was removed.
    pub fn remove<Q>(&mut self, id: &Q) -> bool
    where
        String: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.remove_mut(id)
    }

    /// Whether both tables are the same version (share their root): no entry changed.
    #[must_use]
    pub fn same_as(&self, other: &Self) -> bool {
        self.map.ptr_eq(&other.map)
    }
}

/// `table["id"]`, like a `BTreeMap`: panics when the id is missing (tests and known ids only).
impl<V> std::ops::Index<&str> for Table<V> {
    type Output = V;

    fn index(&self, id: &str) -> &V {
        &self.map[id]
    }
}

impl<'a, V> IntoIterator for &'a Table<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = <&'a Inner<V> as IntoIterator>::IntoIter;

    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

impl<V> FromIterator<(String, V)> for Table<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut table = Self::default();
        for (id, value) in iter {
            table.insert(id, value);
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn a_clone_is_independent_of_later_changes() {
        let mut a: Table<u32> = [("x".to_string(), 1), ("y".to_string(), 2)]
            .into_iter()
            .collect();
        let before = a.clone();
        assert!(a.same_as(&before));
        a.insert("x".into(), 10);
        assert!(a.remove("y"));
        assert!(!a.remove("y"));
        assert_eq!(before.get("x"), Some(&1));
        assert_eq!(before.len(), 2);
        assert_eq!(a.get("x"), Some(&10));
        assert_eq!(a.len(), 1);
        assert!(!a.same_as(&before));
        let ids: Vec<&String> = before.keys().collect();
        assert_eq!(ids, ["x", "y"]);
    }
}
